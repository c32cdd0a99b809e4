//! `newswatch replay`: JSON lines in, alerts out, offline.
//!
//! A reader thread cuts the input into numbered batches of lines, worker
//! threads (one per core) decode and match them, and the calling thread
//! writes the alerts back in input order. Both channels are bounded and the
//! reorder buffer can hold at most the batches in flight, so memory stays
//! constant however long the input is.
//!
//! Event time needs the input order (an event without `published_at` takes
//! the latest event time seen so far, SPEC §3), so it is filled in by the
//! writer, not the workers; so is the state of stateful rules, which the
//! writer keeps in input order exactly as the daemon does.
//!
//! With a profile asked for ([`replay_profiled`]), each worker's matcher
//! scratch accounts every candidate's verification, and the workers' logs
//! are merged at the end: what is written to `out` does not change.
//! Digests (SPEC §6) are written as they close, before the alerts of the
//! event whose time closed them, and every period still open is closed at
//! the end of the input.

use std::collections::BTreeMap;
use std::io::{self, BufRead, Write};

use chrono::{DateTime, Utc};
use crossbeam_channel::bounded;

use newswatch_core::engine::{Slot, Staged};
use newswatch_core::event::{format_time, DecodeError, Event};
use newswatch_core::matcher::Scratch;
use newswatch_core::state::Store;
use newswatch_core::Engine;

use crate::profile::Profile;

/// Lines per batch: large enough to amortize channel hand-offs, small enough
/// to keep the reorder buffer small.
const BATCH: usize = 256;

/// One input: a name for messages, and the reader.
pub struct Input {
    pub name: String,
    pub reader: Box<dyn BufRead + Send>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub events: u64,
    pub invalid: u64,
    pub alerts: u64,
}

struct Line {
    input: usize,
    number: u64,
    bytes: Vec<u8>,
}

enum Outcome {
    Blank,
    Invalid {
        input: usize,
        number: u64,
        error: DecodeError,
    },
    Valid {
        time: Option<DateTime<Utc>>,
        /// The event, kept only when a stateful rule matched it.
        event: Option<Box<Event>>,
        staged: Staged,
    },
}

/// Replay `inputs` through `engine`, writing alert JSON lines to `out`.
/// Invalid lines are logged (with file and line number) and counted.
pub fn replay(
    engine: &Engine,
    inputs: Vec<Input>,
    out: &mut dyn Write,
    threads: usize,
) -> io::Result<Stats> {
    replay_profiled(engine, inputs, out, threads, false).map(|(stats, _)| stats)
}

/// [`replay`], and with `profile` the per-rule verification costs (empty
/// without).
pub fn replay_profiled(
    engine: &Engine,
    inputs: Vec<Input>,
    out: &mut dyn Write,
    threads: usize,
    profile: bool,
) -> io::Result<(Stats, Profile)> {
    let threads = threads.max(1);
    let names: Vec<String> = inputs.iter().map(|i| i.name.clone()).collect();
    let (work_tx, work_rx) = bounded::<(u64, Vec<Line>)>(threads * 2);
    let (done_tx, done_rx) = bounded::<(u64, Vec<Outcome>)>(threads * 2);
    std::thread::scope(|scope| {
        let reader = scope.spawn(move || -> io::Result<()> {
            let mut seq = 0;
            let mut batch = Vec::with_capacity(BATCH);
            for (i, mut input) in inputs.into_iter().enumerate() {
                let mut number = 0;
                loop {
                    let mut bytes = Vec::new();
                    if input.reader.read_until(b'\n', &mut bytes)? == 0 {
                        break;
                    }
                    number += 1;
                    batch.push(Line {
                        input: i,
                        number,
                        bytes,
                    });
                    if batch.len() == BATCH {
                        if work_tx.send((seq, std::mem::take(&mut batch))).is_err() {
                            return Ok(()); // the writer stopped (e.g. broken pipe)
                        }
                        seq += 1;
                    }
                }
            }
            if !batch.is_empty() {
                let _ = work_tx.send((seq, batch));
            }
            Ok(())
        });
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let work_rx = work_rx.clone();
                let done_tx = done_tx.clone();
                scope.spawn(move || {
                    let mut scratch = Scratch::new();
                    scratch.cost.set_timing(u32::from(profile));
                    for (seq, lines) in work_rx {
                        let outcomes = lines
                            .into_iter()
                            .map(|line| process(engine, &mut scratch, line))
                            .collect();
                        if done_tx.send((seq, outcomes)).is_err() {
                            break;
                        }
                    }
                    let mut costs = Profile::default();
                    costs.absorb(&mut scratch.cost);
                    costs
                })
            })
            .collect();
        drop(done_tx);
        drop(work_rx);

        let result = write_in_order(engine, done_rx, &names, out);
        // On a write error the receiver is dropped here, which unblocks and
        // stops the workers and the reader.
        let read = reader
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("reader thread panicked")));
        let mut costs = Profile::default();
        for w in workers {
            // A worker that panicked lost only its share of the profile;
            // its events were reported missing through the channel already.
            if let Ok(c) = w.join() {
                costs.merge(&c);
            }
        }
        let stats = result?;
        read?;
        Ok((stats, costs))
    })
}

fn process(engine: &Engine, scratch: &mut Scratch, line: Line) -> Outcome {
    let bytes = trim_line(&line.bytes);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Outcome::Blank;
    }
    match engine.decode(bytes) {
        Err(error) => Outcome::Invalid {
            input: line.input,
            number: line.number,
            error,
        },
        Ok(ev) => {
            let staged = engine.stage(&ev, scratch, None);
            let stateful = staged
                .slots
                .iter()
                .any(|s| matches!(s, Slot::Stateful { .. }));
            Outcome::Valid {
                time: ev.published_at,
                event: stateful.then(|| Box::new(ev)),
                staged,
            }
        }
    }
}

fn trim_line(b: &[u8]) -> &[u8] {
    let b = b.strip_suffix(b"\n").unwrap_or(b);
    b.strip_suffix(b"\r").unwrap_or(b)
}

fn write_in_order(
    engine: &Engine,
    done_rx: crossbeam_channel::Receiver<(u64, Vec<Outcome>)>,
    names: &[String],
    out: &mut dyn Write,
) -> io::Result<Stats> {
    let mut stats = Stats::default();
    let mut pending: BTreeMap<u64, Vec<Outcome>> = BTreeMap::new();
    let mut next = 0;
    let mut latest: Option<DateTime<Utc>> = None;
    let mut store = Store::default();
    let mut changes = Vec::new();
    for (seq, outcomes) in done_rx {
        pending.insert(seq, outcomes);
        while let Some(outcomes) = pending.remove(&next) {
            next += 1;
            for o in outcomes {
                match o {
                    Outcome::Blank => {}
                    Outcome::Invalid {
                        input,
                        number,
                        error,
                    } => {
                        stats.events += 1;
                        stats.invalid += 1;
                        tracing::warn!(
                            input = %names[input],
                            line = number,
                            reason = error.reason.as_str(),
                            detail = %error.detail,
                            "skipping invalid event"
                        );
                    }
                    Outcome::Valid {
                        time,
                        event,
                        staged,
                    } => {
                        stats.events += 1;
                        if let Some(t) = time {
                            latest = Some(latest.map_or(t, |l| l.max(t)));
                        }
                        let alerts = match event {
                            // State is kept in input order, here.
                            Some(_) => {
                                changes.clear();
                                let alerts =
                                    engine.settle(staged, latest, &mut store, &mut changes);
                                write_digests(&mut store, out)?;
                                alerts
                            }
                            None => staged
                                .slots
                                .into_iter()
                                .filter_map(|s| match s {
                                    Slot::Ready(_, a) => Some(*a),
                                    Slot::Stateful { .. } => None,
                                })
                                .collect(),
                        };
                        for mut a in alerts {
                            if a.event_time.is_none() {
                                a.event_time = latest.map(|t| format_time(&t));
                            }
                            serde_json::to_writer(&mut *out, &a)?;
                            out.write_all(b"\n")?;
                            stats.alerts += 1;
                        }
                    }
                }
            }
        }
    }
    store.close_all(&mut changes);
    write_digests(&mut store, out)?;
    out.flush()?;
    Ok(stats)
}

/// The digests that closed, as JSON lines.
fn write_digests(store: &mut Store, out: &mut dyn Write) -> io::Result<()> {
    for d in store.take_digests() {
        serde_json::to_writer(&mut *out, &d)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}
