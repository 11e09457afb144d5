use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

use crate::DataId;

/// One stored piece of layer data, with Gravio's field names.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Record {
    /// Unique id of the record.
    pub data_id: DataId,
    /// Id of the area the layer belongs to.
    pub area_id: Uuid,
    /// Name of the area.
    pub area_name: String,
    /// Id of the layer the device is bound to.
    pub layer_id: Uuid,
    /// Name of the layer.
    pub layer_name: String,
    /// Kind of data of the layer, such as `Webhook-JSON`.
    pub kind_name: String,
    /// Id of the device that sent the data (a webhook's short id).
    pub physical_device_id: String,
    /// Name of the device that sent the data (a webhook's name).
    pub physical_device_name: String,
    /// Type of `data`, such as `json`.
    pub data_type: String,
    /// The received value.
    pub data: serde_json::Value,
    /// Time the hub received the data, in UTC; serialized as RFC 3339 with nanoseconds.
    #[serde(
        serialize_with = "serialize_timestamp",
        deserialize_with = "deserialize_timestamp"
    )]
    pub timestamp: DateTime<Utc>,
    /// Transport facts of the request that carried the data.
    pub transport: Transport,
}

/// Transport facts of a record that a viewer shows next to the data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "Protocol", rename_all = "lowercase")]
pub enum Transport {
    /// An HTTP or HTTPS request.
    Http(HttpTransport),
    /// An MQTT message received from a broker.
    Mqtt(MqttTransport),
}

/// Facts of the MQTT message that carried a record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MqttTransport {
    /// Name of the broker in the configuration.
    pub broker: String,
    /// Topic the message was published to.
    pub topic: String,
    /// Quality of service the broker delivered the message with: 0, 1 or 2.
    #[serde(rename = "QoS")]
    pub qos: u8,
    /// Whether the broker sent the message as a retained message, which it does when a
    /// subscription starts, so the message may be older than the subscription.
    pub retain: bool,
}

/// Facts of the HTTP request that carried a record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HttpTransport {
    /// Address and port of the client, as seen by the hub.
    pub remote_address: String,
    /// Request method, such as `POST`.
    pub method: String,
    /// The `Content-Type` header as sent, if any.
    pub content_type: Option<String>,
    /// The raw query string of a request whose data is in its body, if it had one, so a
    /// token or id that a device appends to the URL is kept too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Whether the request arrived over TLS.
    pub tls: bool,
}

/// Formats a timestamp as RFC 3339 in UTC with nanoseconds, e.g.
/// `2021-09-13T00:26:42.594348934Z`.
pub fn format_timestamp(timestamp: &DateTime<Utc>) -> String {
    timestamp.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

fn serialize_timestamp<S: Serializer>(
    timestamp: &DateTime<Utc>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format_timestamp(timestamp))
}

fn deserialize_timestamp<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<DateTime<Utc>, D::Error> {
    let text = String::deserialize(deserializer)?;
    DateTime::parse_from_rfc3339(&text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn sample() -> Record {
        Record {
            data_id: "0190f5a2b3c47d8e9f0a1b2c3d4e5f60"
                .parse()
                .expect("valid id"),
            area_id: Uuid::nil(),
            area_name: "Office".into(),
            layer_id: Uuid::nil(),
            layer_name: "Webhooks".into(),
            kind_name: "Webhook-JSON".into(),
            physical_device_id: "a1b2c3d4e5f6".into(),
            physical_device_name: "sensor-data".into(),
            data_type: "json".into(),
            data: serde_json::json!({"temperature": 25.5, "humidity": 60}),
            timestamp: Utc
                .timestamp_opt(1_631_492_802, 594_348_934)
                .single()
                .expect("valid time"),
            transport: Transport::Http(HttpTransport {
                remote_address: "127.0.0.1:50000".into(),
                method: "POST".into(),
                content_type: Some("application/json".into()),
                query: None,
                tls: true,
            }),
        }
    }

    #[test]
    fn record_uses_gravio_field_names() {
        let json = serde_json::to_value(sample()).expect("serializable");
        for field in [
            "DataId",
            "AreaId",
            "AreaName",
            "LayerId",
            "LayerName",
            "KindName",
            "PhysicalDeviceId",
            "PhysicalDeviceName",
            "DataType",
            "Data",
            "Timestamp",
            "Transport",
        ] {
            assert!(json.get(field).is_some(), "missing {field}");
        }
        assert_eq!(json["Transport"]["Protocol"], "http");
        assert_eq!(json["Transport"]["RemoteAddress"], "127.0.0.1:50000");
    }

    #[test]
    fn timestamp_has_nanoseconds_and_z() {
        let json = serde_json::to_value(sample()).expect("serializable");
        assert_eq!(json["Timestamp"], "2021-09-13T00:26:42.594348934Z");
    }

    #[test]
    fn record_round_trips() {
        let record = sample();
        let text = serde_json::to_string(&record).expect("serializable");
        let back: Record = serde_json::from_str(&text).expect("deserializable");
        assert_eq!(back, record);
    }
}
