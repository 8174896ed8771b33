//!
//! This module holds no code, only this page. Each section shows, in a program that compiles,
//! how purekafka does one thing a librdkafka program does (through confluent-kafka-go, rdkafka
//! or librdkafka's C API). The call-by-call tables, and what differs on purpose, are in
//! `docs/PORTING.md`; every property is in `docs/CONFIGURATION.md`.
//!
//! The examples use the settings of Tencent CKafka's client guide: SASL_PLAINTEXT with PLAIN,
//! the user name `instanceId#username`, and the topic `test`. Property names are librdkafka's,
//! and [`ClientConfig::set`] checks each one when it is set:
//!
//! ```
//! use purekafka::ClientConfig;
//! # fn main() -> Result<(), purekafka::ConfigError> {
//! let config = ClientConfig::new()
//!     .set("bootstrap.servers", "127.0.0.1:9094")?
//!     .set("security.protocol", "SASL_PLAINTEXT")?
//!     .set("sasl.mechanism", "PLAIN")?
//!     .set("sasl.username", "ckafka-local#purekafka")?
//!     .set("sasl.password", "purekafka-secret")?;
//! // A mistyped name or value fails here, naming the key, rather than when the client starts.
//! assert!(config.clone().set("acks", "al").is_err());
//! # Ok(()) }
//! ```
//!
//! [`CKafkaConfig::load`] reads CKafka's `ckafka.json` and [`CKafkaConfig::client_config`] turns
//! it into the same settings, with `group.id` from its `consumerGroupId`.
//!
//! Every client runs on the application's tokio runtime: there is no thread of its own to start
//! and nothing to poll for callbacks. Build clients inside a runtime.
//!
//! # 1. Producing, with delivery reports
//!
//! librdkafka tells each record's fate in a delivery report, served by a poll call or a channel.
//! In purekafka each record has a [`DeliveryFuture`]: [`Producer::produce`] queues the record
//! and returns it, and [`Producer::send`] queues the record and waits for it.
//!
//! ```no_run
//! use purekafka::{ClientConfig, Producer, ProducerRecord};
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! # let config = ClientConfig::new()
//! #     .set("bootstrap.servers", "127.0.0.1:9094")?
//! #     .set("security.protocol", "SASL_PLAINTEXT")?
//! #     .set("sasl.mechanism", "PLAIN")?
//! #     .set("sasl.username", "ckafka-local#purekafka")?
//! #     .set("sasl.password", "purekafka-secret")?;
//! let producer = Producer::builder(config.set("acks", 1)?).build().await?;
//!
//! // One record, waited for until the leader has it.
//! let delivered = producer.send(ProducerRecord::new("test").value("Confluent-Kafka")).await?;
//! println!("Delivered message to {delivered}"); // test[0]@628
//!
//! // Many records: queue each one, keep its future, and await the futures later.
//! let mut pending = Vec::new();
//! for word in ["Golang Client Message", "third message"] {
//!     pending.push(producer.produce(ProducerRecord::new("test").key("k1").value(word)).await?);
//! }
//! for delivery in pending {
//!     match delivery.await {
//!         Ok(metadata) => println!("Delivered message to {metadata}"),
//!         Err(e) => println!("Delivery failed: {e}"),
//!     }
//! }
//! producer.close().await; // delivers whatever is still queued, then returns
//! # Ok(()) }
//! ```
//!
//! A future may be dropped: the record is delivered all the same. A program built around one
//! place that hears every outcome (confluent-kafka-go's `Events()` channel, rdkafka's
//! `ProducerContext::delivery`) asks for the report stream with
//! [`ProducerBuilder::delivery_reports`]. Each [`DeliveryReport`] hands back the record's key,
//! value and headers, and the [`Opaque`] the record carried, so a report can be matched to what
//! was sent:
//!
//! ```no_run
//! use std::time::Duration;
//! use purekafka::{ClientConfig, Producer, ProducerRecord};
//! # async fn demo(config: ClientConfig) -> Result<(), Box<dyn std::error::Error>> {
//! let producer = Producer::builder(config).delivery_reports().build().await?;
//! let mut reports = producer.delivery_reports().expect("built with delivery_reports()");
//! let printer = tokio::spawn(async move {
//!     // Ends once the producer is closed and every report was read.
//!     while let Some(report) = reports.recv().await {
//!         let id = report.opaque.as_ref().and_then(|o| o.downcast_ref::<u64>()).copied();
//!         match report.error {
//!             None => println!("Delivered message {id:?} to {}", report.metadata),
//!             Some(e) => println!("Delivery of message {id:?} failed: {e}"),
//!         }
//!     }
//! });
//!
//! for (id, word) in (0_u64..).zip(["Confluent-Kafka", "Golang Client Message"]) {
//!     let record = ProducerRecord::new("test").value(word).opaque(id);
//!     // The future is dropped: the outcome comes on the stream.
//!     producer.produce(record).await?;
//! }
//! producer.flush(Duration::from_secs(10)).await?;
//! producer.close().await;
//! printer.await?;
//! # Ok(()) }
//! ```
//!
//! Unlike confluent-kafka-go, where delivery reports are on unless `go.delivery.reports` is
//! false, the stream is off unless asked for: the futures are always there.
//!
//! # 2. Consuming a group's partitions as a stream, committing by hand
//!
//! [`Consumer::stream`] turns the consumer into a [`Stream`](futures_core::Stream) of messages.
//! The stream borrows the consumer; between two messages, [`MessageStream::consumer`] reaches it
//! to commit, store offsets or seek. With `enable.auto.commit=false`, nothing is committed
//! unless the application commits it:
//!
//! ```no_run
//! use futures_util::StreamExt;
//! use purekafka::{ClientConfig, Consumer};
//! # async fn demo(config: ClientConfig) -> Result<(), Box<dyn std::error::Error>> {
//! let config = config
//!     .set("group.id", "purekafka-demo")?
//!     .set("auto.offset.reset", "earliest")?
//!     .set("enable.auto.commit", false)?;
//! let mut consumer = Consumer::builder(config).build().await?;
//! consumer.subscribe(&["test"])?;
//!
//! let mut messages = consumer.stream();
//! while let Some(msg) = messages.next().await {
//!     let msg = match msg {
//!         Ok(msg) => msg,
//!         // A broker down, a leader moving: the consumer carries on by itself.
//!         Err(e) if e.is_retriable() => { eprintln!("Consumer error: {e}"); continue; }
//!         Err(e) => return Err(e.into()),
//!     };
//!     let value = String::from_utf8_lossy(msg.value.as_deref().unwrap_or_default());
//!     println!("Message on {msg}: {value}"); // Message on test[0]@628: Confluent-Kafka
//!     messages.consumer().expect("between messages").commit_message(&msg).await?;
//! }
//! # Ok(()) }
//! ```
//!
//! The stream does not end by itself. Stop it from outside (a timeout around `next()`, or
//! `tokio::select!` with a shutdown signal), drop it, and call [`Consumer::close`], which leaves
//! the group so that its partitions move to the other members at once. Dropping the stream
//! while it waits for a message leaves the consumer as it was.
//!
//! One commit per message costs a round trip to the group's coordinator each time. To commit
//! less often, call [`Consumer::commit`] (or [`Consumer::commit_async`]) every few hundred
//! messages: it commits the offset after the last message handed out of each partition.
//!
//! # 3. The rebalance hook
//!
//! librdkafka's rebalance callback, rdkafka's `ConsumerContext::pre_rebalance` and
//! `post_rebalance`, and the Go client's rebalance callback are a [`RebalanceListener`] here,
//! given to [`ConsumerBuilder::rebalance_listener`]. Its methods are async and have defaults
//! that do nothing. The consumer assigns and unassigns partitions itself, around the calls.
//!
//! Before partitions go, [`RebalanceListener::revoking`] is the last chance to commit what was
//! processed of them, with [`Revoking::commit`]:
//!
//! ```no_run
//! use std::collections::HashMap;
//! use std::sync::{Arc, Mutex};
//! use purekafka::{ClientConfig, Consumer, ListenerFuture, RebalanceListener, Revoking};
//!
//! /// Per partition, the offset after the last record the application finished processing.
//! type Processed = Arc<Mutex<HashMap<(String, i32), i64>>>;
//!
//! struct CommitProcessed(Processed);
//!
//! impl RebalanceListener for CommitProcessed {
//!     fn revoking<'a>(&'a mut self, revoking: &'a Revoking) -> ListenerFuture<'a> {
//!         Box::pin(async move {
//!             let offsets: Vec<(String, i32, i64)> = {
//!                 let processed = self.0.lock().unwrap();
//!                 let next = |tp: &(String, i32)| Some((tp.0.clone(), tp.1, *processed.get(tp)?));
//!                 revoking.partitions().iter().filter_map(next).collect()
//!             };
//!             if let Err(e) = revoking.commit(&offsets).await {
//!                 eprintln!("commit before revoking failed: {e}");
//!             }
//!         })
//!     }
//! }
//!
//! # async fn demo(config: ClientConfig) -> Result<(), Box<dyn std::error::Error>> {
//! let processed = Processed::default();
//! let mut consumer = Consumer::builder(config.set("enable.auto.commit", false)?)
//!     .rebalance_listener(CommitProcessed(processed.clone()))
//!     .build()
//!     .await?;
//! consumer.subscribe(&["test"])?;
//! loop {
//!     let msg = consumer.recv().await?;
//!     // ... process the message, then note it as done:
//!     processed.lock().unwrap().insert((msg.topic.to_string(), msg.partition), msg.offset + 1);
//!     // (and now and then, commit what `processed` holds with consumer.commit_offsets)
//! }
//! # }
//! ```
//!
//! After partitions are assigned, and before any of their records is handed out,
//! [`RebalanceListener::assigned`] may choose where each starts, with [`Assigned::seek`]: here,
//! from offsets the application keeps in a store of its own. [`RebalanceListener::lost`] is
//! called when the group dropped the member; nothing can be committed for those partitions.
//!
//! ```no_run
//! use std::collections::HashMap;
//! use purekafka::{Assigned, ListenerFuture, RebalanceListener};
//!
//! struct StartFromStore {
//!     /// The next offset to read of each partition, as the application's database has it.
//!     next: HashMap<(String, i32), i64>,
//! }
//!
//! impl RebalanceListener for StartFromStore {
//!     fn assigned<'a>(&'a mut self, assigned: &'a Assigned) -> ListenerFuture<'a> {
//!         Box::pin(async move {
//!             for (topic, partition, start) in assigned.positions() {
//!                 if let Some(&next) = self.next.get(&(topic.clone(), *partition)) {
//!                     println!("{topic}[{partition}]: from {next}, not {start}");
//!                     assigned.seek(topic, *partition, next).expect("one of those assigned");
//!                 }
//!             }
//!         })
//!     }
//!
//!     fn lost<'a>(&'a mut self, lost: &'a [(String, i32)]) -> ListenerFuture<'a> {
//!         Box::pin(async move { eprintln!("partitions lost: {lost:?}") })
//!     }
//! }
//! ```
//!
//! A consumer that only wants to know what happened takes [`Consumer::rebalance_events`]
//! instead: a stream of [`RebalanceEvent`]s (assigned, revoked, lost, a subscribed topic not
//! available).
//!
//! # 4. Storing offsets, then committing
//!
//! By default each message counts as consumed once it is handed out, and the automatic commit
//! (`enable.auto.commit`, every `auto.commit.interval.ms`) commits that. With
//! `enable.auto.offset.store=false`, only what the application stores with
//! [`Consumer::store_offset`] or [`Consumer::store_offsets`] is committed, so a message counts
//! once it is processed (librdkafka's `rd_kafka_offsets_store`, the Go client's `StoreMessage`):
//!
//! ```no_run
//! use std::time::Duration;
//! use purekafka::{ClientConfig, Consumer};
//! # fn process(_: &purekafka::Message) -> Result<(), Box<dyn std::error::Error>> { Ok(()) }
//! # async fn demo(config: ClientConfig) -> Result<(), Box<dyn std::error::Error>> {
//! let config = config
//!     .set("group.id", "purekafka-demo")?
//!     // Auto commit stays on, and commits what is stored.
//!     .set("enable.auto.offset.store", false)?;
//! let mut consumer = Consumer::builder(config).build().await?;
//! consumer.subscribe(&["test"])?;
//!
//! for _ in 0..100 {
//!     // All the messages that are ready, or none after 500 ms.
//!     for msg in consumer.poll(Duration::from_millis(500)).await? {
//!         process(&msg)?;
//!         consumer.store_offset(&msg)?; // stores msg.offset + 1
//!     }
//! }
//! consumer.commit().await?; // commits what was stored, without waiting for the interval
//! consumer.close().await?; // commits once more (enable.auto.commit) and leaves the group
//! # Ok(()) }
//! ```
//!
//! [`Consumer::committed`] asks the coordinator what the group has committed, and
//! [`Consumer::position`] says where the consumer is.
//!
//! # 5. Admin calls
//!
//! [`Admin`] creates, lists, describes and deletes topics, and does the same for consumer
//! groups and their offsets. A call about several items answers for each one, in the order
//! asked, so one topic that exists already does not hide the others:
//!
//! ```no_run
//! use purekafka::{Admin, ClientConfig, NewTopic};
//! # async fn demo(config: ClientConfig) -> Result<(), Box<dyn std::error::Error>> {
//! let admin = Admin::builder(config).build().await?;
//!
//! let new = [NewTopic::new("test", 3, 1).config("retention.ms", "86400000")];
//! for (topic, result) in admin.create_topics(&new).await? {
//!     match result {
//!         Ok(()) => println!("created {topic}"), // and every partition has a leader
//!         Err(e) => println!("{topic}: {e}"),     // TOPIC_ALREADY_EXISTS, say
//!     }
//! }
//! for listing in admin.list_topics().await?.iter().filter(|t| !t.internal) {
//!     println!("{} ({} partitions)", listing.name, listing.partitions);
//! }
//! for (topic, result) in admin.describe_topics(&["test"]).await? {
//!     for p in result?.partitions {
//!         let (id, leader, isr) = (p.id, p.leader, p.isr);
//!         println!("{topic}[{id}]: leader {leader:?}, replicas {:?}, isr {isr:?}", p.replicas);
//!     }
//! }
//! admin.delete_topic("test").await?; // returns once the metadata no longer lists it
//! # Ok(()) }
//! ```
//!
//! [`Admin::create_topic`] and [`Admin::create_topic_if_missing`] create one topic;
//! [`Admin::list_groups`], [`Admin::describe_groups`] and [`Admin::list_group_offsets`] look at
//! consumer groups. What operators reach for when something goes wrong is there too: a group's
//! lag seen from outside it, offsets by time, configurations, record deletion, ACLs:
//!
//! ```no_run
//! # async fn demo(admin: purekafka::Admin) -> Result<(), purekafka::Error> {
//! use purekafka::{AlterConfig, ConfigResource};
//! for ((topic, partition), lag) in admin.group_lag("purekafka-demo").await? {
//!     let lag = lag?;
//!     println!("{topic}[{partition}]: {:?} of {} ({:?} behind)", lag.committed, lag.log_end, lag.lag);
//! }
//! let topic = ConfigResource::Topic("test".into());
//! let retention = vec![AlterConfig::Set("retention.ms".into(), "86400000".into())];
//! admin.incremental_alter_configs(&[(topic, retention)]).await?;
//! # Ok(()) }
//! ```
//!
//! # 6. Events and errors
//!
//! librdkafka sends errors that concern no single call as events (`error_cb`, a `kafka.Error`
//! on the Go client's channels, rdkafka's `ClientContext::error`). purekafka returns an error
//! from the call it concerns, and reports as events, through `events()` on [`Producer`],
//! [`Consumer`] and [`Admin`], what belongs to the client as a whole: no broker reachable, a
//! broker refusing the client's credentials or certificate (also on a reconnect of its own),
//! and a producer failing for good. Building a client does not fail because no broker answers,
//! so this is where a program learns that it cannot reach any:
//!
//! ```no_run
//! use purekafka::{ClientConfig, ClientEvent, Producer};
//! # async fn demo(config: ClientConfig) -> Result<(), Box<dyn std::error::Error>> {
//! let producer = Producer::builder(config).build().await?;
//! let mut events = producer.events();
//! tokio::spawn(async move {
//!     while let Some(event) = events.recv().await {
//!         match event {
//!             // librdkafka's ERR__ALL_BROKERS_DOWN; the client keeps trying.
//!             ClientEvent::AllBrokersDown(e) => eprintln!("all brokers are down: {e}"),
//!             ClientEvent::BrokersReachable => eprintln!("a broker answers again"),
//!             // librdkafka's ERR__AUTHENTICATION / ERR__SSL, and ERR__FATAL.
//!             ClientEvent::Error(e) => eprintln!("a broker refused us: {e}"),
//!             ClientEvent::Fatal(e) => eprintln!("the producer failed for good: {e}"),
//!             other => eprintln!("{other:?}"),
//!         }
//!     }
//! });
//! # Ok(()) }
//! ```
//!
//! With `enable.partition.eof=true`, the end of a partition comes from `recv`, `poll` and the
//! stream as [`Error::PartitionEof`], as librdkafka's `ERR__PARTITION_EOF` does. It is
//! retriable, like a broker down or a leader moving, and the consumer reads on:
//!
//! ```no_run
//! use purekafka::{ClientConfig, Consumer, Error};
//! # async fn demo(config: ClientConfig) -> Result<(), Box<dyn std::error::Error>> {
//! let mut consumer = Consumer::builder(config.set("enable.partition.eof", true)?).build().await?;
//! consumer.subscribe(&["test"])?;
//! loop {
//!     match consumer.recv().await {
//!         Ok(msg) => println!("Message on {msg}"),
//!         Err(Error::PartitionEof { topic, partition, offset }) => {
//!             println!("{topic}[{partition}]: read up to {offset}");
//!         }
//!         Err(e) if e.is_retriable() => eprintln!("Consumer error: {e}"),
//!         Err(e) => return Err(e.into()),
//!     }
//! }
//! # }
//! ```
//!
//! # 7. Logging
//!
//! librdkafka prints its `debug` contexts itself. purekafka logs through `tracing` and prints
//! nothing: the application's subscriber decides what is shown. `debug` is still taken, and
//! [`ClientConfig::debug_filter`] turns its contexts into filter directives, one per `tracing`
//! target that covers them:
//!
//! ```
//! use purekafka::ClientConfig;
//! # fn main() -> Result<(), purekafka::ConfigError> {
//! let config = ClientConfig::new().set("debug", "broker,cgrp")?;
//! assert_eq!(
//!     config.debug_filter().as_deref(),
//!     Some("purekafka::conn=debug,purekafka::cluster::brokers=debug,\
//!           purekafka::group=debug,purekafka::consumer::membership=debug")
//! );
//! assert_eq!(ClientConfig::new().debug_filter(), None); // debug unset
//! # Ok(()) }
//! ```
//!
//! The directives suit `RUST_LOG`, `tracing_subscriber`'s `EnvFilter` (its `env-filter`
//! feature), or its `Targets` filter, which needs no feature beyond `fmt`:
//!
//! ```no_run
//! use purekafka::ClientConfig;
//! use tracing_subscriber::filter::Targets;
//! use tracing_subscriber::prelude::*;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = ClientConfig::new().set("debug", "broker,cgrp")?;
//! let filter = config.debug_filter().unwrap_or_else(|| "purekafka=warn".into());
//! let targets: Targets = filter.parse()?;
//! tracing_subscriber::registry()
//!     .with(tracing_subscriber::fmt::layer())
//!     .with(targets)
//!     .init();
//! # Ok(()) }
//! ```
//!
//! # 8. Transactions: consume, transform, produce exactly once
//!
//! As with librdkafka: a producer with `transactional.id` calls
//! [`Producer::init_transactions`] once, then per batch of input [`Producer::begin_transaction`],
//! produces, adds the consumer's positions with [`Producer::send_offsets_to_transaction`] and
//! the group's metadata from [`Consumer::group_metadata`], and [`Producer::commit_transaction`].
//! A failed call says what to do next: [`Error::is_retriable`] (call it again),
//! [`Error::txn_requires_abort`] ([`Producer::abort_transaction`], then read the batch again),
//! or [`Error::is_fatal`] (close; another copy with the same id took over).
//!
//! ```no_run
//! use std::time::Duration;
//! use purekafka::{ClientConfig, Consumer, Producer, ProducerRecord};
//! # async fn demo(config: ClientConfig) -> Result<(), Box<dyn std::error::Error>> {
//! let t = Duration::from_secs(30);
//! let mut consumer = Consumer::builder(
//!     config.clone().set("enable.auto.commit", false)?, // offsets go with the transactions
//! )
//! .build()
//! .await?;
//! consumer.subscribe(&["test"])?;
//! let producer =
//!     Producer::builder(config.set("transactional.id", "test-upper-1")?).build().await?;
//! producer.init_transactions(t).await?;
//! loop {
//!     producer.begin_transaction()?;
//!     let msg = consumer.recv().await?;
//!     let upper = msg.value.as_deref().unwrap_or_default().to_ascii_uppercase();
//!     producer.produce(ProducerRecord::new("test-upper").value(upper)).await?;
//!     let group = consumer.group_metadata().expect("group.id is set");
//!     let next = [(&*msg.topic, msg.partition, msg.offset + 1)];
//!     producer.send_offsets_to_transaction(&next, &group, t).await?;
//!     match producer.commit_transaction(t).await {
//!         Ok(()) => {}
//!         Err(e) if e.txn_requires_abort() => {
//!             producer.abort_transaction(t).await?;
//!             consumer.seek(&msg.topic, msg.partition, msg.offset)?; // read it again
//!         }
//!         Err(e) => return Err(e.into()),
//!     }
//! }
//! # }
//! ```
//!
//! `examples/exactly_once.rs` does the same a batch at a time, with `ckafka.json`.
//!
//! [`ClientConfig::set`]: crate::ClientConfig::set
//! [`ClientConfig::debug_filter`]: crate::ClientConfig::debug_filter
//! [`CKafkaConfig::load`]: crate::CKafkaConfig::load
//! [`CKafkaConfig::client_config`]: crate::CKafkaConfig::client_config
//! [`DeliveryFuture`]: crate::DeliveryFuture
//! [`DeliveryReport`]: crate::DeliveryReport
//! [`Opaque`]: crate::Opaque
//! [`Producer`]: crate::Producer
//! [`Producer::produce`]: crate::Producer::produce
//! [`Producer::send`]: crate::Producer::send
//! [`ProducerBuilder::delivery_reports`]: crate::ProducerBuilder::delivery_reports
//! [`Consumer`]: crate::Consumer
//! [`Consumer::stream`]: crate::Consumer::stream
//! [`Consumer::close`]: crate::Consumer::close
//! [`Consumer::commit`]: crate::Consumer::commit
//! [`Consumer::commit_async`]: crate::Consumer::commit_async
//! [`Consumer::committed`]: crate::Consumer::committed
//! [`Consumer::position`]: crate::Consumer::position
//! [`Consumer::rebalance_events`]: crate::Consumer::rebalance_events
//! [`Consumer::store_offset`]: crate::Consumer::store_offset
//! [`Consumer::store_offsets`]: crate::Consumer::store_offsets
//! [`ConsumerBuilder::rebalance_listener`]: crate::ConsumerBuilder::rebalance_listener
//! [`MessageStream::consumer`]: crate::MessageStream::consumer
//! [`RebalanceListener`]: crate::RebalanceListener
//! [`RebalanceListener::revoking`]: crate::RebalanceListener::revoking
//! [`RebalanceListener::assigned`]: crate::RebalanceListener::assigned
//! [`RebalanceListener::lost`]: crate::RebalanceListener::lost
//! [`RebalanceEvent`]: crate::RebalanceEvent
//! [`Revoking::commit`]: crate::Revoking::commit
//! [`Assigned::seek`]: crate::Assigned::seek
//! [`Admin`]: crate::Admin
//! [`Admin::create_topic`]: crate::Admin::create_topic
//! [`Admin::create_topic_if_missing`]: crate::Admin::create_topic_if_missing
//! [`Admin::list_groups`]: crate::Admin::list_groups
//! [`Admin::describe_groups`]: crate::Admin::describe_groups
//! [`Admin::list_group_offsets`]: crate::Admin::list_group_offsets
//! [`Error::PartitionEof`]: crate::Error::PartitionEof
//! [`Producer::init_transactions`]: crate::Producer::init_transactions
//! [`Producer::begin_transaction`]: crate::Producer::begin_transaction
//! [`Producer::send_offsets_to_transaction`]: crate::Producer::send_offsets_to_transaction
//! [`Producer::commit_transaction`]: crate::Producer::commit_transaction
//! [`Producer::abort_transaction`]: crate::Producer::abort_transaction
//! [`Consumer::group_metadata`]: crate::Consumer::group_metadata
//! [`Error::is_retriable`]: crate::Error::is_retriable
//! [`Error::txn_requires_abort`]: crate::Error::txn_requires_abort
//! [`Error::is_fatal`]: crate::Error::is_fatal
