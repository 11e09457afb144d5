//! MQTT messages into records: the hub's [`Sink`] and the hub id that derived client
//! identifiers contain.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;

use chrono::Utc;
use hubkit_model::{BoundLayer, DataId, DeviceRef, MqttTransport, Record, Transport};
use hubkit_mqtt::{Delivery, Outcome, Sink, SinkError, decode_payload};
use hubkit_store::{InboxKey, MqttWrite, NewDeadLetter};
use sha2::{Digest, Sha256};
use tracing::debug;

use crate::state::AppState;

/// File in the data directory that contains the hub id.
pub const HUB_ID_FILE: &str = "hub-id";

/// Commits MQTT deliveries to the hub's store, through the bindings in force when the
/// message arrives.
pub(crate) struct HubSink {
    pub state: Arc<AppState>,
}

impl Sink for HubSink {
    async fn deliver(&self, delivery: Delivery) -> Result<Outcome, SinkError> {
        let write = self.build(&delivery);
        if write.records.is_empty() && write.dead_letters.is_empty() {
            // Every matching entry has its collection switched off.
            return Ok(Outcome::default());
        }
        let letters = write.dead_letters.len();
        let fired = crate::actions::Fired::of(&write.runs);
        let written = match self.state.store.insert_mqtt(write).await {
            Ok(written) => written,
            Err(err) => {
                fired.not_stored(&self.state);
                return Err(SinkError(crate::error_chain(&err)));
            }
        };
        // A redelivered message writes nothing, its runs included.
        if written.duplicate {
            fired.not_stored(&self.state);
        } else {
            fired.stored(&self.state);
        }
        let records = written.cursors.len();
        self.state.metrics.records_stored.inc_by(records as u64);
        debug!(
            mqtt.broker = %delivery.broker,
            mqtt.topic = %delivery.message.topic,
            records,
            duplicate = written.duplicate,
            "stored MQTT message"
        );
        Ok(Outcome {
            records,
            dead_letters: if written.duplicate { 0 } else { letters },
            duplicate: written.duplicate,
        })
    }

    async fn forget_session(&self, session: Arc<str>) -> Result<(), SinkError> {
        self.state
            .store
            .reset_mqtt_session(&session)
            .await
            .map_err(|err| SinkError(crate::error_chain(&err)))
    }
}

impl HubSink {
    /// Builds one record per matching entry and enabled binding, or one dead letter per
    /// matching entry whose payload format the payload does not fit.
    fn build(&self, delivery: &Delivery) -> MqttWrite {
        let runtime = self.state.runtime.load();
        let message = &delivery.message;
        let now = Utc::now();
        let transport = MqttTransport {
            broker: delivery.broker.to_string(),
            topic: message.topic.clone(),
            qos: message.qos.level(),
            retain: message.retain,
        };
        let mut write = MqttWrite::default();
        for entry in &delivery.entries {
            let layers = runtime
                .topology
                .layers_for(&DeviceRef::MqttTopic(entry.name.clone()));
            if layers.is_empty() {
                continue;
            }
            let decoded = match delivery.over_limit {
                Some(limit) => Err(format!(
                    "payload of {} bytes is larger than the broker's max_packet_bytes of \
                     {limit}; raise max_packet_bytes to record such messages",
                    message.payload.len()
                )),
                None => decode_payload(entry.format, &message.payload),
            };
            match decoded {
                Ok(data) => {
                    for layer in layers {
                        write
                            .records
                            .push(record(layer, entry, &transport, data.clone(), now));
                    }
                }
                Err(reason) => write.dead_letters.push(NewDeadLetter {
                    received_at: now,
                    protocol: "mqtt".to_owned(),
                    broker: delivery.broker.to_string(),
                    device: entry.name.clone(),
                    topic: message.topic.clone(),
                    qos: message.qos.level(),
                    retain: message.retain,
                    payload: message.payload.to_vec(),
                    reason,
                }),
            }
        }
        write.runs = crate::actions::fire(&self.state, &runtime, &write.records);
        write.inbox = message.ack_token().map(|token| InboxKey {
            session: delivery.session.to_string(),
            pkid: token.pkid,
            topic: message.topic.clone(),
            payload_sha256: Sha256::digest(&message.payload).into(),
            dup: message.dup,
        });
        write
    }
}

fn record(
    layer: &BoundLayer,
    entry: &hubkit_mqtt::TopicEntry,
    transport: &MqttTransport,
    data: serde_json::Value,
    now: chrono::DateTime<Utc>,
) -> Record {
    Record {
        data_id: DataId::new(),
        area_id: layer.area_id,
        area_name: layer.area_name.clone(),
        layer_id: layer.layer_id,
        layer_name: layer.layer_name.clone(),
        kind_name: layer.kind.kind_name().to_owned(),
        physical_device_id: transport.topic.clone(),
        physical_device_name: entry.name.clone(),
        data_type: entry.format.as_str().to_owned(),
        data,
        timestamp: now,
        transport: Transport::Mqtt(transport.clone()),
    }
}

/// Returns the hub id from the data directory, creating it on first start: 12 random
/// lower-case hex digits that derived MQTT client identifiers contain, so two hubs on one
/// broker never take over each other's session.
pub(crate) fn hub_id(data_dir: &Path) -> std::io::Result<String> {
    let path = data_dir.join(HUB_ID_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) if is_hub_id(text.trim()) => return Ok(text.trim().to_owned()),
        Ok(_) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "{} does not contain a hub id of 12 lower-case hex digits; \
                     delete it to make a new one",
                    path.display()
                ),
            ));
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(err),
    }
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes).map_err(|err| std::io::Error::other(err.to_string()))?;
    let id: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    let temporary = data_dir.join(format!(".{HUB_ID_FILE}.tmp"));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temporary)?;
    file.write_all(format!("{id}\n").as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&temporary, &path)?;
    Ok(id)
}

fn is_hub_id(text: &str) -> bool {
    text.len() == 12
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}
