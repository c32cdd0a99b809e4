//! Keeping secrets out of error messages and logs.
//!
//! librdkafka redacts sensitive properties in its own debug output, but two
//! error paths around it echo configured values verbatim: rdkafka's
//! `ClientConfig` error prints the property's value (so a misspelt
//! `sasl.pasword` would print the password), and the TOML parser quotes the
//! offending source line (an unescaped backslash in a password would print
//! the line holding it). These helpers rewrite such messages before they
//! reach a log line or a terminal; `tests/it/logs.rs` checks the result with a
//! canary password.

use rdkafka::error::KafkaError;

/// What stands in for a value that is not shown.
pub const REDACTED: &str = "[redacted]";

/// Whether a librdkafka property name (or a misspelling of one) may hold a
/// secret: passwords, keys, tokens, credentials. Deliberately broad; an
/// over-redacted path in an error message costs little.
pub fn is_sensitive_property(name: &str) -> bool {
    const NEEDLES: [&str; 13] = [
        "pas", // password, passwd, passphrase, and misspellings like pasword
        "pwd",
        "secret",
        "token",
        "credential",
        "private",
        "pem", // ssl.key.pem, ssl.certificate.pem, ssl.ca.pem
        "ssl.key",
        "keystore",
        "oauthbearer.config",
        "jaas",
        "username", // librdkafka redacts it too
        "auth",
    ];
    let n = name.to_ascii_lowercase();
    NEEDLES.iter().any(|needle| n.contains(needle))
}

/// A Kafka client error as text, without configured secrets.
///
/// rdkafka renders a rejected property as `desc key value`: `desc` already
/// quotes an invalid value where that helps (`Invalid value "x" for
/// configuration property "acks"`), so the trailing value is never printed;
/// and for a sensitive property the value is also removed from `desc`.
pub fn kafka_error(e: &KafkaError) -> String {
    match e {
        KafkaError::ClientConfig(_, desc, key, value) => {
            let desc = if is_sensitive_property(key) && !value.is_empty() {
                desc.replace(value.as_str(), REDACTED)
            } else {
                desc.clone()
            };
            format!("client configuration error: {desc}")
        }
        other => other.to_string(),
    }
}

/// A config-loading error as text, without the source snippet the TOML
/// parser adds: the snippet repeats the offending line, which may hold a
/// secret. Line and column stay in the message, enough to find it.
pub fn config_error(e: &config::ConfigError) -> String {
    let text = e.to_string();
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| {
            // Snippet lines look like `  |`, `2 | "sasl.password" = …`, `  |   ^`.
            let rest = l
                .trim_start()
                .trim_start_matches(|c: char| c.is_ascii_digit());
            !rest.trim_start().starts_with('|')
        })
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    match kept.split_first() {
        Some((first, rest)) if !rest.is_empty() => format!("{first}: {}", rest.join(" ")),
        Some((first, _)) => (*first).to_owned(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::types::RDKafkaConfRes;

    #[test]
    fn sensitive_names() {
        let table = [
            ("sasl.password", true),
            ("sasl.pasword", true),
            ("SASL.PASSWORD", true),
            ("ssl.key.password", true),
            ("ssl.keystore.password", true),
            ("ssl.key.pem", true),
            ("ssl.key.location", true),
            ("sasl.oauthbearer.config", true),
            ("sasl.oauthbearer.client.secret", true),
            ("sasl.username", true),
            ("security.protocol", false),
            ("sasl.mechanism", false),
            ("fetch.wait.max.ms", false),
            ("compression.type", false),
        ];
        for (name, want) in table {
            assert_eq!(is_sensitive_property(name), want, "{name}");
        }
    }

    #[test]
    fn kafka_config_errors_never_print_secrets() {
        let secret = "canary-Sup3rS3cret";
        let table = [
            // a misspelt sensitive property: rdkafka appends the value
            (
                "No such configuration property: \"sasl.pasword\"",
                "sasl.pasword",
                secret,
                "No such configuration property: \"sasl.pasword\"",
            ),
            // a sensitive property whose value is quoted in the description
            (
                "Invalid value \"canary-Sup3rS3cret\" for configuration property \"sasl.password\"",
                "sasl.password",
                secret,
                "Invalid value \"[redacted]\" for configuration property \"sasl.password\"",
            ),
            // an ordinary property keeps its (useful) value
            (
                "Invalid value \"BOGUS\" for configuration property \"sasl.mechanism\"",
                "sasl.mechanism",
                "BOGUS",
                "Invalid value \"BOGUS\" for configuration property \"sasl.mechanism\"",
            ),
        ];
        for (desc, key, value, want) in table {
            let e = KafkaError::ClientConfig(
                RDKafkaConfRes::RD_KAFKA_CONF_INVALID,
                desc.into(),
                key.into(),
                value.into(),
            );
            assert!(e.to_string().contains(value), "rdkafka echoes the value");
            let got = kafka_error(&e);
            assert_eq!(got, format!("client configuration error: {want}"));
            if key.contains("pas") {
                assert!(!got.contains(secret), "{got}");
            }
        }
    }

    #[test]
    fn toml_snippets_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let secret = "canary-Sup3rS3cret";
        let table = [
            // an escape TOML does not know
            format!("[kafka.consumer_properties]\n\"sasl.password\" = \"{secret}\\q\"\n"),
            // unquoted
            format!("[kafka.consumer_properties]\n\"sasl.password\" = {secret}\n"),
            // twice
            format!(
                "[kafka.consumer_properties]\n\"sasl.password\" = \"x\"\n\"sasl.password\" = \"{secret}\"\n"
            ),
        ];
        for (i, toml) in table.iter().enumerate() {
            let p = dir.path().join(format!("c{i}.toml"));
            std::fs::write(&p, toml).unwrap();
            let e = config::Config::builder()
                .add_source(config::File::from(p.as_path()).format(config::FileFormat::Toml))
                .build()
                .unwrap_err();
            assert!(e.to_string().contains(secret), "the parser quotes the line");
            let got = config_error(&e);
            assert!(!got.contains(secret), "{got}");
            assert!(got.contains("TOML parse error at line"), "{got}");
            assert!(!got.contains('\n'), "one line: {got}");
        }
    }
}
