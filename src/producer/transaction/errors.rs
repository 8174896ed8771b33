//! What each error means for a transactional producer: fatal, abortable or retriable, as the
//! Java client takes them, and the errors the transactional calls return.

use std::sync::Arc;
use std::time::Duration;

use super::Call;
use crate::error::{Error, TxnErrorKind};
use crate::protocol::codes;

pub(super) use codes::CONCURRENT_TRANSACTIONS;
const PRODUCER_FENCED: i16 = 90;
const TRANSACTIONAL_ID_AUTHORIZATION_FAILED: i16 = 53;
const INVALID_TXN_STATE: i16 = 48;
const INVALID_PRODUCER_ID_MAPPING: i16 = 49;
const INVALID_TRANSACTION_TIMEOUT: i16 = 50;
const TRANSACTION_COORDINATOR_FENCED: i16 = 52;
const UNSUPPORTED_FOR_MESSAGE_FORMAT: i16 = 43;
const CLUSTER_AUTHORIZATION_FAILED: i16 = 31;

/// What an error code from the transaction or group coordinator means: as the Java client's
/// handlers take them, being fenced (an old epoch included) or refused for good is fatal.
fn kind_of_coordinator_code(code: i16) -> TxnErrorKind {
    match code {
        PRODUCER_FENCED
        | codes::INVALID_PRODUCER_EPOCH
        | TRANSACTIONAL_ID_AUTHORIZATION_FAILED
        | INVALID_TXN_STATE
        | INVALID_PRODUCER_ID_MAPPING
        | INVALID_TRANSACTION_TIMEOUT
        | TRANSACTION_COORDINATOR_FENCED
        | UNSUPPORTED_FOR_MESSAGE_FORMAT
        | codes::UNSUPPORTED_VERSION
        | CLUSTER_AUTHORIZATION_FAILED => TxnErrorKind::Fatal,
        _ => TxnErrorKind::Abortable,
    }
}

/// What an error code of a record's Produce means, as the Java client takes it: fenced or
/// refused for good is fatal; anything else, an old epoch included (KIP-588: the abort then
/// tells whether the producer was fenced), only ends the transaction.
pub(super) fn kind_of_produce_code(code: i16) -> TxnErrorKind {
    match code {
        PRODUCER_FENCED
        | TRANSACTIONAL_ID_AUTHORIZATION_FAILED
        | INVALID_PRODUCER_ID_MAPPING
        | codes::UNSUPPORTED_VERSION
        | CLUSTER_AUTHORIZATION_FAILED => TxnErrorKind::Fatal,
        _ => TxnErrorKind::Abortable,
    }
}

/// Whether the protocol calls `code` retriable.
pub(super) fn retriable(code: i16) -> bool {
    crate::error::KafkaCode::from_code(code).is_some_and(|c| c.is_retriable())
}

/// What an error that ended a transactional call means for the producer.
pub(super) fn kind_of(error: &Error) -> TxnErrorKind {
    match error {
        Error::Transaction { kind, .. } => *kind,
        Error::Broker {
            api: "Produce",
            code,
            ..
        } => kind_of_produce_code(code.code()),
        Error::Broker { code, .. } => kind_of_coordinator_code(code.code()),
        // The cluster has no transactions, refuses our credentials, or the settings are wrong:
        // no abort helps.
        Error::UnsupportedApi { .. }
        | Error::Authentication { .. }
        | Error::Tls { .. }
        | Error::Config(_)
        | Error::TransactionState { .. }
        | Error::Closed => TxnErrorKind::Fatal,
        _ => TxnErrorKind::Abortable,
    }
}

/// The abortable error of a transaction a record of which failed with its sequence unknown.
pub(crate) fn sequence_unknown() -> Error {
    Error::Transaction {
        call: "produce",
        kind: TxnErrorKind::Abortable,
        cause: Arc::new(Error::TransactionState {
            call: "produce",
            state: "a record failed with its sequence number unknown; abort the transaction \
                    (the abort takes a new producer epoch)"
                .into(),
        }),
    }
}

/// Whether the abort after `error` must bump the epoch (KIP-360): the broker forgot the
/// producer, or a record's sequence is unknown.
pub(super) fn bumps_epoch(error: &Error) -> bool {
    matches!(
        error.kafka_code().map(|c| c.code()),
        Some(
            codes::UNKNOWN_PRODUCER_ID
                | codes::OUT_OF_ORDER_SEQUENCE_NUMBER
                | codes::INVALID_PRODUCER_EPOCH
        )
    )
}

pub(super) fn txn_error(call: &'static str, kind: TxnErrorKind, cause: Error) -> Error {
    match cause {
        // Already classified (a fatal error met again): not wrapped twice.
        Error::Transaction { cause, kind, .. } => Error::Transaction { call, kind, cause },
        cause => Error::Transaction {
            call,
            kind,
            cause: Arc::new(cause),
        },
    }
}

pub(super) fn timed_out(call: Call, timeout: Duration, waiting_for: &str) -> Error {
    Error::Transaction {
        call: call.name(),
        kind: TxnErrorKind::Retriable,
        cause: Arc::new(Error::Timeout {
            what: format!(
                "{} waiting for {waiting_for}; call it again to go on",
                call.name()
            ),
            after_ms: timeout.as_millis() as u64,
            outcome_unknown: true,
        }),
    }
}
