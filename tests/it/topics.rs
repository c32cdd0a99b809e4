//! Topics the config and the rules name must exist (SPEC §9), checked by
//! metadata at start-up and on reload, against a real broker (Tansu); and a
//! rule may not publish to an input topic.

use std::time::Duration;

use newswatch_testkit::*;

use crate::util::BIN;

/// The cluster's topics, from metadata of all of them (which never
/// auto-creates one).
fn topics(brokers: &str) -> Vec<String> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let c: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    let md = c.fetch_metadata(None, Duration::from_secs(10)).unwrap();
    md.topics().iter().map(|t| t.name().to_owned()).collect()
}

fn rules(id: &str, topic: Option<&str>) -> String {
    let topic = topic.map_or(String::new(), |t| format!("    topic: {t}\n"));
    format!("rules:\n  - id: {id}\n    title: {id}\n    query: 'lavrov'\n{topic}")
}

#[test]
fn a_missing_rule_topic_stops_the_start_naming_it() {
    let missing = unique("nowhere");
    let fx = Fixture::new(&rules("lost", Some(&missing)), 1, &[], "");
    let mut daemon = fx.spawn(BIN);
    let st = daemon.wait_exit(Duration::from_secs(60));
    assert!(st.is_some_and(|s| !s.success()), "exit: {st:?}");
    let log = daemon.log();
    assert!(
        log.contains(&format!("rule lost: topic \"{missing}\" does not exist")),
        "{log}"
    );
    // Checked, never created.
    assert!(
        !topics(&fx.broker.addr()).contains(&missing),
        "the topic was created"
    );
}

#[test]
fn a_reload_naming_a_missing_or_input_topic_is_refused_and_old_rules_stay() {
    let fx = Fixture::new(&rules("first", None), 1, &[], "");
    let mut daemon = fx.spawn(BIN);
    daemon.wait_ready(Duration::from_secs(60));

    let missing = unique("nowhere");
    std::fs::write(&fx.rules, rules("second", Some(&missing))).unwrap();
    let (code, body) = http(&fx.http, "POST", "/-/reload");
    assert_eq!(code, 400, "{body}");
    assert!(
        body.contains(&format!("rule second: topic \"{missing}\" does not exist")),
        "{body}"
    );
    let (_, list) = daemon.get("/rules");
    assert!(
        list.contains("\"first\"") && !list.contains("\"second\""),
        "{list}"
    );
    assert!(
        daemon
            .metric(r#"newswatch_rules_reloads_total{result="failure"}"#)
            .is_some_and(|n| n >= 1.0),
        "the refused reload is counted"
    );

    std::fs::write(&fx.rules, rules("third", Some(&fx.input))).unwrap();
    let (code, body) = http(&fx.http, "POST", "/-/reload");
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("is an input topic"), "{body}");

    // Once the topic exists, the same rules load.
    fx.broker.create_topic(&missing, 1);
    std::fs::write(&fx.rules, rules("second", Some(&missing))).unwrap();
    let (code, body) = http(&fx.http, "POST", "/-/reload");
    assert_eq!(code, 200, "{body}");
    assert!(daemon.get("/rules").1.contains("\"second\""));
    daemon.terminate(Duration::from_secs(15));
}
