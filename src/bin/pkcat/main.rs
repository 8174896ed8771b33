//! pkcat: kcat's command line on purekafka. Produce from stdin or files, consume to stdout,
//! print the cluster's metadata, measure throughput.
//!
//! ```text
//! pkcat -b 127.0.0.1:9092 -t test -P -K: < records.txt
//! pkcat -b 127.0.0.1:9092 -t test -C -o beginning -e -f '%t[%p]@%o: %k %s\n'
//! pkcat -F ckafka.json -C -G readers test
//! pkcat -b 127.0.0.1:9092 -C --share workers jobs
//! pkcat -b 127.0.0.1:9092 -L
//! pkcat perf -P -b 127.0.0.1:9092 -t test -n 1000000 -s 100
//! ```
//!
//! Exit status: 0 when done, 1 when Kafka or I/O failed, 2 for a bad flag, property or file.

mod args;
mod consume;
mod format;
mod metadata;
mod perf;
mod produce;

use std::process::ExitCode;

use args::{Mode, Refusal};

/// What ended a run that did not succeed.
pub enum Failure {
    /// A usage error, found once running: a property a client refused, say (exit 2).
    Usage(String),
    /// Kafka or I/O (exit 1).
    Run(String),
    /// Whoever read stdout stopped reading (`pkcat -C … | head`): the end, not an error.
    OutputClosed,
}

impl From<purekafka::Error> for Failure {
    fn from(e: purekafka::Error) -> Failure {
        match e {
            purekafka::Error::Config(e) => Failure::Usage(e.to_string()),
            e => Failure::Run(e.to_string()),
        }
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Failure {
        match e.kind() {
            std::io::ErrorKind::BrokenPipe => Failure::OutputClosed,
            _ => Failure::Run(e.to_string()),
        }
    }
}

/// With `-X statistics.interval.ms=N`, each statistics object the client emits goes to stderr
/// as one line of librdkafka's statistics JSON (kcat prints nothing for it).
pub fn statistics_to_stderr(mut statistics: purekafka::StatisticsStream) {
    tokio::spawn(async move {
        while let Some(stats) = statistics.recv().await {
            eprintln!("{}", stats.to_json());
        }
    });
}

fn main() -> ExitCode {
    let command = match args::parse(std::env::args_os().skip(1)) {
        Ok(command) => command,
        Err(Refusal::Help) => {
            println!("{}", args::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(Refusal::Usage(message)) => {
            eprintln!("pkcat: {message}\n(pkcat -h lists the flags)");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("pkcat: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async move {
        match command.mode {
            Mode::Produce => produce::run(command).await,
            Mode::Consume if command.share.is_some() => consume::share(command).await,
            Mode::Consume => consume::run(command).await,
            Mode::Metadata => metadata::run(command).await,
            Mode::Perf { produce: true } => perf::produce(command).await,
            Mode::Perf { produce: false } => perf::consume(command).await,
        }
    });
    match result {
        Ok(()) | Err(Failure::OutputClosed) => ExitCode::SUCCESS,
        Err(Failure::Usage(message)) => {
            eprintln!("pkcat: {message}");
            ExitCode::from(2)
        }
        Err(Failure::Run(message)) => {
            eprintln!("pkcat: {message}");
            ExitCode::from(1)
        }
    }
}
