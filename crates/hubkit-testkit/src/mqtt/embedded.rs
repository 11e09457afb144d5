//! The embedded broker: rumqttd 0.20 on threads of the test process, behind a relay that
//! avoids a disconnect race in rumqttd.
//!
//! The race is in rumqttd 0.20.0's `remote` (src/server/broker.rs) and
//! `handle_disconnection` (src/router/routing.rs). When a client sends DISCONNECT and closes
//! its socket, the router removes the connection for the packet. The connection's link task,
//! which saw the socket close, then sends a second disconnect event for the same connection
//! id. The router reuses freed ids, so when another client connected in between, the second
//! event disconnects that client. Without the relay, the test
//! `embedded_broker_keeps_quick_reconnects` failed in 5 of 10 runs on a 2-core machine.
//!
//! The relay forwards DISCONNECT but keeps the broker side of the socket open until rumqttd
//! closes it, so the link task ends through the router and sends no second event.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

use super::broker::{
    MAX_PACKET_SIZE, POLL_INTERVAL, READY_TIMEOUT, START_ATTEMPTS, accepts_connections, free_port,
};
use super::frame::{FrameEvent, FrameReader, packet_type};

/// Maximum time the relay waits for rumqttd to close a connection after the client's
/// DISCONNECT, before it closes the connection itself.
const DISCONNECT_GRACE: Duration = Duration::from_secs(5);

/// Size of the buffer for one read from the client.
const READ_BUFFER_BYTES: usize = 64 * 1024;

/// Starts rumqttd on a free port and a relay in front of it, and returns the relay's
/// address, which clients connect to.
///
/// NOTE: rumqttd 0.20 has no shutdown API, so rumqttd and the relay keep running, and keep
/// their ports, until the test process exits.
pub(super) async fn start_embedded_broker() -> anyhow::Result<SocketAddr> {
    for _ in 0..START_ATTEMPTS {
        let broker_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()?));
        if start_rumqttd(broker_addr).await? {
            return start_relay(broker_addr);
        }
    }
    bail!("the embedded rumqttd broker failed to bind a free port in {START_ATTEMPTS} attempts")
}

/// Starts rumqttd on `addr` and waits until it accepts connections. Returns `Ok(false)` when
/// its server stopped before that, which happens when the port was taken.
async fn start_rumqttd(addr: SocketAddr) -> anyhow::Result<bool> {
    let config = rumqttd_config(addr);
    let (ended_tx, ended_rx) = mpsc::channel();
    thread::Builder::new()
        .name(format!("rumqttd-{}", addr.port()))
        .spawn(move || {
            let mut broker = rumqttd::Broker::new(config);
            // start() returns only after every server thread ended, for example after a
            // failed bind; the result is not needed beyond that signal.
            let _ = broker.start();
            let _ = ended_tx.send(());
        })
        .context("failed to spawn the rumqttd thread")?;
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if !matches!(ended_rx.try_recv(), Err(mpsc::TryRecvError::Empty)) {
            return Ok(false);
        }
        if accepts_connections(addr).await {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            bail!(
                "the embedded rumqttd broker on {addr} did not accept connections within {READY_TIMEOUT:?}"
            );
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

fn rumqttd_config(addr: SocketAddr) -> rumqttd::Config {
    let connections = rumqttd::ConnectionSettings {
        // A u16 in rumqttd: the maximum time from TCP accept to CONNECT.
        connection_timeout_ms: 60_000,
        max_payload_size: MAX_PACKET_SIZE,
        // Outgoing QoS 1 and 2 messages in flight per connection; mosquitto's default is 20.
        max_inflight_count: 100,
        auth: None,
        external_auth: None,
        dynamic_filters: true,
    };
    let server = rumqttd::ServerSettings {
        name: format!("hubkit-testkit-v4-{}", addr.port()),
        listen: addr,
        tls: None,
        next_connection_delay_ms: 0,
        connections,
    };
    let router = rumqttd::RouterConfig {
        max_connections: 10_000,
        max_outgoing_packet_count: 200,
        // Each subscribed filter keeps a log of up to max_segment_count segments of this
        // size, which is what a persistent session reads again after a reconnect.
        max_segment_size: 100 * 1024 * 1024,
        max_segment_count: 10,
        custom_segment: None,
        initialized_filters: None,
        shared_subscriptions_strategy: Default::default(),
    };
    rumqttd::Config {
        id: 0,
        router,
        v4: Some(HashMap::from([("1".to_string(), server)])),
        ..Default::default()
    }
}

/// Starts the relay to `upstream` on a thread with its own Tokio runtime, so that it does
/// not depend on the runtime of the test that started it.
fn start_relay(upstream: SocketAddr) -> anyhow::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .context("failed to bind the rumqttd relay to a free 127.0.0.1 port")?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("failed to build the rumqttd relay's runtime")?;
    thread::Builder::new()
        .name(format!("rumqttd-relay-{}", addr.port()))
        .spawn(move || runtime.block_on(relay_loop(listener, upstream)))
        .context("failed to spawn the rumqttd relay thread")?;
    Ok(addr)
}

async fn relay_loop(listener: std::net::TcpListener, upstream: SocketAddr) {
    let Ok(listener) = TcpListener::from_std(listener) else {
        return;
    };
    loop {
        // Errors such as EMFILE concern one connection attempt, so keep accepting.
        if let Ok((client, _)) = listener.accept().await {
            tokio::spawn(relay_connection(client, upstream));
        }
    }
}

/// End of the client-to-broker direction of a relayed connection.
enum ClientEnd {
    /// The client closed its side, and the relay passed the close on.
    Closed,
    /// The client sent DISCONNECT. The broker side stays open until rumqttd closes it.
    Disconnected(OwnedWriteHalf),
}

async fn relay_connection(client: TcpStream, upstream: SocketAddr) {
    let Ok(broker) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = broker.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (broker_read, broker_write) = broker.into_split();

    let forward = forward_until_disconnect(client_read, broker_write);
    let backward = copy_to_client(broker_read, client_write);
    tokio::pin!(forward, backward);
    tokio::select! {
        end = &mut forward => match end {
            Ok(ClientEnd::Disconnected(broker_write)) => {
                let _ = tokio::time::timeout(DISCONNECT_GRACE, &mut backward).await;
                drop(broker_write);
            }
            Ok(ClientEnd::Closed) => {
                let _ = backward.await;
            }
            Err(_) => {}
        },
        // rumqttd closed the connection, so close the client's too.
        _ = &mut backward => {}
    }
}

async fn copy_to_client(mut from: OwnedReadHalf, mut to: OwnedWriteHalf) -> std::io::Result<()> {
    tokio::io::copy(&mut from, &mut to).await?;
    to.shutdown().await
}

async fn forward_until_disconnect(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
) -> std::io::Result<ClientEnd> {
    let mut reader = FrameReader::new();
    let mut input = vec![0u8; READ_BUFFER_BYTES];
    let mut output = Vec::with_capacity(READ_BUFFER_BYTES);
    let mut in_disconnect = false;
    loop {
        let read = from.read(&mut input).await?;
        if read == 0 {
            to.shutdown().await?;
            return Ok(ClientEnd::Closed);
        }
        let mut position = 0;
        let mut disconnected = false;
        loop {
            let (used, event) = reader
                .next(&input[position..read])
                .map_err(|err| std::io::Error::new(std::io::ErrorKind::InvalidData, err))?;
            position += used;
            match event {
                None => break,
                Some(FrameEvent::Header(header)) => {
                    in_disconnect = header.packet_type == packet_type::DISCONNECT;
                    output.extend_from_slice(reader.header_bytes());
                }
                Some(FrameEvent::Body(body)) => output.extend_from_slice(body),
                Some(FrameEvent::End(_)) => {
                    if in_disconnect {
                        // MQTT allows nothing after DISCONNECT, so the rest is discarded.
                        disconnected = true;
                        break;
                    }
                }
            }
        }
        to.write_all(&output).await?;
        output.clear();
        if disconnected {
            return Ok(ClientEnd::Disconnected(to));
        }
    }
}
