//! pkcat's command line, kcat's flags: parsed into a [`Command`], or a usage error (exit 2)
//! that names the flag or property at fault.

use std::ffi::OsString;

use bytes::Bytes;
use lexopt::prelude::*;
use purekafka::{AutoOffsetReset, CKafkaConfig, ClientConfig};

use crate::format::{unescape, Output};

pub const USAGE: &str = "\
usage: pkcat -P|-C|-L [options] [FILE... | TOPIC...]
       pkcat perf -P|-C [options]

modes:
  -P                produce: each line of stdin (-D for another delimiter) is a record; FILE
                    arguments are sent one record per file (-l: one per line)
  -C                consume from -t (all partitions, or -p), or with -G GROUP TOPIC... as a
                    member of the group, or with --share GROUP TOPIC... as a member of the
                    share group (Kafka 4.2 and later), accepting each record it prints
  -L                the cluster's metadata: brokers, topics, partitions (-t for one topic)
  perf              produce (-P) or consume (-C) -n records of -s bytes, with a live progress
                    line on stderr and a summary on stdout

general:
  -b BROKERS        bootstrap servers, host:port,...
  -t TOPIC          the topic
  -p PARTITION      one partition only
  -X KEY=VALUE      any librdkafka / Java client property (repeatable)
  -F FILE           properties from FILE: CKafka's ckafka.json (which also gives -t), or
                    key=value lines
  -q                quiet: no informational messages
  -h                this help

produce:
  -D DELIM          record delimiter (default \\n; \\t \\0 \\xNN and the like are understood)
  -K DELIM          key delimiter: what comes before its first occurrence is the key
  -H NAME=VALUE     a header on every record (repeatable)
  -l                with FILE arguments, one record per line
  -c COUNT          stop after COUNT records

consume:
  -G GROUP          join GROUP; the topics follow the options (or -t)
  --share GROUP     join share group GROUP; the topics follow the options (or -t); each
                    record printed is accepted, the others released when pkcat stops
  -o OFFSET         beginning, end, stored, N (absolute) or -N (N from the end); default
                    beginning (with -G: the group's offsets, beginning where it has none)
  -c COUNT          exit after COUNT records
  -e                exit when every partition is read to its end
  -f FORMAT         print each record as FORMAT: %t topic, %p partition, %o offset, %k key,
                    %s value, %K key size, %S value size, %T timestamp (ms), %h headers, %%;
                    \\n \\t \\r \\\\ too (default: the value, then -D; with -K: key, -K, value)
  -J                print each record as a JSON object (with -L: the metadata as JSON)

perf:
  -n COUNT          records (default 1000000)
  -s SIZE           bytes per record value (default 100)";

/// What pkcat was asked to do.
pub enum Mode {
    Produce,
    Consume,
    Metadata,
    Perf { produce: bool },
}

/// Where a consumer starts (`-o`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    Beginning,
    End,
    /// The group's committed offsets (`-o stored`; with -G, where nothing else is said).
    Stored,
    At(i64),
    FromEnd(i64),
}

/// A parsed command line.
pub struct Command {
    pub mode: Mode,
    pub config: ClientConfig,
    pub topic: Option<String>,
    pub partition: Option<i32>,
    pub group: Option<String>,
    /// `--share GROUP`: a member of a share group.
    pub share: Option<String>,
    /// FILE arguments (-P) or TOPIC arguments (-C -G, -C --share).
    pub rest: Vec<String>,
    pub start: Option<Start>,
    pub count: Option<u64>,
    pub exit_at_end: bool,
    pub output: Output,
    pub delimiter: Vec<u8>,
    pub key_delimiter: Option<Vec<u8>>,
    /// `-H name=value`, made once: each record shares them.
    pub headers: Vec<(Bytes, Bytes)>,
    pub lines: bool,
    pub quiet: bool,
    pub perf_records: u64,
    pub perf_size: usize,
}

/// Why the command line was refused; `Help` is `-h`.
#[derive(Debug)]
pub enum Refusal {
    Help,
    Usage(String),
}

impl From<lexopt::Error> for Refusal {
    fn from(e: lexopt::Error) -> Refusal {
        Refusal::Usage(e.to_string())
    }
}

impl From<purekafka::ConfigError> for Refusal {
    fn from(e: purekafka::ConfigError) -> Refusal {
        Refusal::Usage(e.to_string())
    }
}

/// Parses `args` (without the program name).
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Command, Refusal> {
    let mut parser = lexopt::Parser::from_args(args);
    let mut mode = None;
    let mut properties = Properties::new();
    let mut c = Command {
        mode: Mode::Metadata,
        config: ClientConfig::new(),
        topic: None,
        partition: None,
        group: None,
        share: None,
        rest: Vec::new(),
        start: None,
        count: None,
        exit_at_end: false,
        output: Output::Plain,
        delimiter: b"\n".to_vec(),
        key_delimiter: None,
        headers: Vec::new(),
        lines: false,
        quiet: false,
        perf_records: 1_000_000,
        perf_size: 100,
    };
    let mut format = None;
    let mut json = false;
    let mut first = true;
    while let Some(arg) = parser.next()? {
        match arg {
            Value(v) if first && v == "perf" => mode = Some(Mode::Perf { produce: true }),
            Short('P') => set_mode(Mode::Produce, &mut mode)?,
            Short('C') => set_mode(Mode::Consume, &mut mode)?,
            Short('L') => set_mode(Mode::Metadata, &mut mode)?,
            Short('b') => properties.push(("bootstrap.servers".into(), text(&mut parser)?)),
            Short('t') => c.topic = Some(text(&mut parser)?),
            Short('p') => c.partition = Some(number(&mut parser, "-p")?),
            Short('X') => {
                let property = text(&mut parser)?;
                let (key, value) = property.split_once('=').ok_or_else(|| {
                    Refusal::Usage(format!("-X takes key=value, got {property:?}"))
                })?;
                properties.push((key.to_owned(), value.to_owned()));
            }
            Short('F') => {
                let path = text(&mut parser)?;
                let (file_properties, topic) = config_file(&path)?;
                properties.extend(file_properties);
                c.topic = c.topic.or(topic);
            }
            Short('q') => c.quiet = true,
            Short('D') => c.delimiter = delimiter(&mut parser, "-D")?,
            Short('K') => c.key_delimiter = Some(delimiter(&mut parser, "-K")?),
            Short('H') => {
                let header = text(&mut parser)?;
                let (name, value) = header.split_once('=').ok_or_else(|| {
                    Refusal::Usage(format!("-H takes name=value, got {header:?}"))
                })?;
                c.headers.push((
                    Bytes::copy_from_slice(name.as_bytes()),
                    Bytes::copy_from_slice(value.as_bytes()),
                ));
            }
            Short('l') => c.lines = true,
            Short('c') => c.count = Some(number(&mut parser, "-c")?),
            Short('G') => c.group = Some(text(&mut parser)?),
            Long("share") => c.share = Some(text(&mut parser)?),
            Short('o') => c.start = Some(start(&text(&mut parser)?)?),
            Short('e') => c.exit_at_end = true,
            Short('f') => format = Some(text(&mut parser)?),
            Short('J') => json = true,
            Short('n') => c.perf_records = number(&mut parser, "-n")?,
            Short('s') => c.perf_size = number(&mut parser, "-s")?,
            Short('h') | Long("help") => return Err(Refusal::Help),
            Value(v) => c.rest.push(
                v.into_string()
                    .map_err(|v| Refusal::Usage(format!("{v:?} is not UTF-8")))?,
            ),
            other => return Err(other.unexpected().into()),
        }
        first = false;
    }
    c.mode = mode.ok_or_else(|| Refusal::Usage("give one of -P, -C and -L".into()))?;
    c.output = match (format, json) {
        (Some(_), true) => return Err(Refusal::Usage("give -f or -J, not both".into())),
        (Some(f), false) => Output::parse(&f).map_err(Refusal::Usage)?,
        (None, true) => Output::Json,
        (None, false) => Output::Plain,
    };
    c.config = configure(properties)?;
    check(&c)?;
    Ok(c)
}

/// Takes the mode flag `m` (-P, -C, -L), which after `perf` says which way it measures.
fn set_mode(m: Mode, mode: &mut Option<Mode>) -> Result<(), Refusal> {
    *mode = Some(match (mode.take(), m) {
        (Some(Mode::Perf { .. }), Mode::Produce) => Mode::Perf { produce: true },
        (Some(Mode::Perf { .. }), Mode::Consume) => Mode::Perf { produce: false },
        (Some(Mode::Perf { .. }), _) => return Err(Refusal::Usage("perf takes -P or -C".into())),
        (Some(_), _) => return Err(Refusal::Usage("give one of -P, -C and -L".into())),
        (None, m) => m,
    });
    Ok(())
}

/// The client configuration: pkcat's defaults, then every -b, -F and -X in the order given.
fn configure(properties: Properties) -> Result<ClientConfig, Refusal> {
    // A consumer with no offset to go by starts at the beginning, as kcat's -o default.
    let mut config = ClientConfig::new()
        .client_id("pkcat")
        .auto_offset_reset(AutoOffsetReset::Earliest);
    for (key, value) in properties {
        config = config.set(&key, value)?;
    }
    if config.common.bootstrap_servers.is_empty() {
        return Err(Refusal::Usage(
            "no brokers: give -b host:port, -X bootstrap.servers=… or -F".into(),
        ));
    }
    Ok(config)
}

/// The flags each mode needs, and those it cannot take.
fn check(c: &Command) -> Result<(), Refusal> {
    let usage = |m: &str| Err(Refusal::Usage(m.to_owned()));
    match c.mode {
        Mode::Produce | Mode::Perf { produce: true } if c.topic.is_none() => {
            usage("producing needs a topic: -t TOPIC")
        }
        Mode::Consume if c.share.is_some() => check_share(c),
        _ if c.share.is_some() => usage("--share is for -C"),
        Mode::Consume if c.group.is_none() && c.topic.is_none() => {
            usage("consuming needs -t TOPIC, or -G GROUP TOPIC...")
        }
        Mode::Consume if c.group.is_some() && c.partition.is_some() => {
            usage("-p reads one partition outside a group; the group assigns partitions to -G")
        }
        Mode::Consume
            if c.group.is_some() && matches!(c.start, Some(Start::At(_) | Start::FromEnd(_))) =>
        {
            usage("with -G, -o takes beginning, end or stored: the group decides the offsets")
        }
        Mode::Consume if c.group.is_some() && c.rest.is_empty() && c.topic.is_none() => {
            usage("-G GROUP needs the topics to join with")
        }
        Mode::Consume if c.group.is_none() && !c.rest.is_empty() => {
            usage("topics after the options are for -G; give -t TOPIC")
        }
        Mode::Perf { produce: false } if c.topic.is_none() => {
            usage("perf -C needs a topic: -t TOPIC")
        }
        Mode::Perf { .. } if !c.rest.is_empty() => usage("perf takes no FILE or TOPIC arguments"),
        _ => Ok(()),
    }
}

/// `-C --share GROUP TOPIC...`: the share group decides where each partition is read from
/// and has no end, so neither -o, -p, -e nor -G goes with it.
fn check_share(c: &Command) -> Result<(), Refusal> {
    let usage = |m: &str| Err(Refusal::Usage(m.to_owned()));
    if c.group.is_some() {
        return usage("give -G or --share, not both");
    }
    if c.partition.is_some() {
        return usage("-p reads one partition outside a group; a share group assigns them");
    }
    if c.start.is_some() {
        return usage(
            "with --share, the group decides where reading starts (its group config \
             share.auto.offset.reset); -o does not apply",
        );
    }
    if c.exit_at_end {
        return usage("a share group has no end to reach: give -c COUNT, or stop with Ctrl-C");
    }
    if c.rest.is_empty() && c.topic.is_none() {
        return usage("--share GROUP needs the topics to read");
    }
    Ok(())
}

fn text(parser: &mut lexopt::Parser) -> Result<String, Refusal> {
    Ok(parser.value()?.string()?)
}

fn number<T: std::str::FromStr>(parser: &mut lexopt::Parser, flag: &str) -> Result<T, Refusal> {
    let value = text(parser)?;
    value
        .parse()
        .map_err(|_| Refusal::Usage(format!("{flag} takes a number, got {value:?}")))
}

fn delimiter(parser: &mut lexopt::Parser, flag: &str) -> Result<Vec<u8>, Refusal> {
    let bytes = unescape(&text(parser)?).map_err(Refusal::Usage)?;
    if bytes.is_empty() {
        return Err(Refusal::Usage(format!("{flag} must not be empty")));
    }
    Ok(bytes)
}

fn start(value: &str) -> Result<Start, Refusal> {
    Ok(match value {
        "beginning" => Start::Beginning,
        "end" => Start::End,
        "stored" => Start::Stored,
        _ => match value.parse::<i64>() {
            Ok(n) if n < 0 => Start::FromEnd(-n),
            Ok(n) => Start::At(n),
            Err(_) => {
                return Err(Refusal::Usage(format!(
                    "-o takes beginning, end, stored, N or -N, got {value:?}"
                )))
            }
        },
    })
}

/// `(key, value)` pairs, applied in turn.
type Properties = Vec<(String, String)>;

/// The properties of `-F path`, and the topic it names: CKafka's ckafka.json, or
/// `key=value` lines (`#` comments and blank lines skipped), as kcat's -F.
fn config_file(path: &str) -> Result<(Properties, Option<String>), Refusal> {
    let text =
        std::fs::read_to_string(path).map_err(|e| Refusal::Usage(format!("-F {path}: {e}")))?;
    if text.trim_start().starts_with('{') {
        let ckafka =
            CKafkaConfig::parse(&text).map_err(|e| Refusal::Usage(format!("-F {path}: {e}")))?;
        let properties = ckafka
            .properties()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        return Ok((properties, ckafka.topic.first().cloned()));
    }
    let mut properties = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line.split_once('=').ok_or_else(|| {
            Refusal::Usage(format!("-F {path}, line {}: expected key=value", n + 1))
        })?;
        properties.push((key.trim().to_owned(), value.trim().to_owned()));
    }
    Ok((properties, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_line(line: &str) -> Result<Command, Refusal> {
        parse(line.split_whitespace().map(OsString::from))
    }

    fn refusal(line: &str) -> String {
        match parse_line(line) {
            Ok(_) => panic!("{line:?} must be refused"),
            Err(Refusal::Help) => "help".into(),
            Err(Refusal::Usage(m)) => m,
        }
    }

    #[test]
    fn kcat_command_lines_parse() {
        let c = parse_line("-C -b h:9092 -t t -p 2 -o -10 -e -c 5 -f %k=%s\\n").unwrap();
        assert!(matches!(c.mode, Mode::Consume));
        assert_eq!(
            (c.partition, c.start, c.count),
            (Some(2), Some(Start::FromEnd(10)), Some(5))
        );
        assert!(c.exit_at_end);
        let c = parse_line("-Ce -b h:9092 -t t").unwrap();
        assert!(c.exit_at_end && matches!(c.mode, Mode::Consume));
        let c = parse_line("-P -b h:9092 -t t -K : -D | -H a=1 -H b=2 -X acks=1 f1 f2").unwrap();
        assert_eq!(
            (c.key_delimiter.as_deref(), &c.delimiter[..]),
            (Some(&b":"[..]), &b"|"[..])
        );
        assert_eq!(c.headers.len(), 2);
        assert_eq!(c.rest, ["f1", "f2"]);
        assert_eq!(c.config.producer.acks, purekafka::Acks::Leader);
        let c = parse_line("-b h:9092 -C -G g t1 t2").unwrap();
        assert_eq!(
            (c.group.as_deref(), &c.rest[..]),
            (Some("g"), &["t1".to_owned(), "t2".to_owned()][..])
        );
        let c = parse_line("-C -b h:9092 --share sg -c 3 t1 t2").unwrap();
        assert_eq!(
            (c.share.as_deref(), &c.rest[..], c.count),
            (Some("sg"), &["t1".to_owned(), "t2".to_owned()][..], Some(3))
        );
        let c = parse_line("perf -P -b h:9092 -t t -n 10 -s 5").unwrap();
        assert!(matches!(c.mode, Mode::Perf { produce: true }));
        assert_eq!((c.perf_records, c.perf_size), (10, 5));
    }

    #[test]
    fn bad_flags_and_properties_are_named() {
        assert!(refusal("-C -b h:9092 -t t -Y").contains("-Y"));
        assert!(refusal("-C -b h:9092 -t t -X bogus.key=1").contains("bogus.key"));
        assert!(refusal("-C -b h:9092 -t t -X acks").contains("key=value"));
        assert!(refusal("-C -b h:9092 -t t -o yesterday").contains("-o takes"));
        assert!(refusal("-C -b h:9092 -t t -p x").contains("-p takes a number"));
        assert!(refusal("-C -b h:9092").contains("needs -t"));
        assert!(refusal("-C -P -b h:9092 -t t").contains("one of"));
        assert!(refusal("-C -t t").contains("no brokers"));
        assert!(refusal("-C -b h:9092 -t t -f %z").contains("%z"));
        assert!(refusal("-C -b h:9092 -G g t -o 5").contains("with -G"));
        assert!(
            refusal("-C -b h:9092 --share g t -o beginning").contains("share.auto.offset.reset")
        );
        assert!(refusal("-C -b h:9092 --share g t -e").contains("no end"));
        assert!(refusal("-C -b h:9092 --share g").contains("needs the topics"));
        assert!(refusal("-C -b h:9092 --share g -G g t").contains("not both"));
        assert!(refusal("-P -b h:9092 -t t --share g").contains("for -C"));
        assert_eq!(refusal("-h"), "help");
    }
}
