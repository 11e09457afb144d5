//! A TCP proxy in front of an MQTT broker that can cut connections and drop packets that
//! clients send, for fault-injection tests.

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinHandle};

use super::frame::{FrameEvent, FrameReader};

/// Size of the buffer for one read from the client.
const READ_BUFFER_BYTES: usize = 64 * 1024;

/// Rules that apply to the next client packets of a type, on any connection.
#[derive(Debug, Default)]
struct Rules {
    drop_remaining: [usize; 16],
    cut_after: [bool; 16],
}

#[derive(Debug, Default)]
struct Shared {
    paused: AtomicBool,
    accepted: AtomicU64,
    rejected: AtomicU64,
    upstream_failures: AtomicU64,
    seen: [AtomicU64; 16],
    dropped: [AtomicU64; 16],
    rules: Mutex<Rules>,
    connections: Mutex<HashMap<u64, AbortHandle>>,
    next_connection: AtomicU64,
}

impl Shared {
    fn rules(&self) -> MutexGuard<'_, Rules> {
        // A panic while the lock is held leaves plain counters behind, so the data stays usable.
        self.rules
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn connections(&self) -> MutexGuard<'_, HashMap<u64, AbortHandle>> {
        self.connections
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A TCP proxy on a free 127.0.0.1 port that forwards every accepted connection to one
/// upstream broker. It parses MQTT fixed headers in the client-to-broker direction, so it can
/// count and drop client packets by type. Broker-to-client bytes pass through unparsed.
///
/// The proxy runs on the Tokio runtime that called [`MqttProxy::start`], and dropping it
/// closes the listener and every connection.
pub struct MqttProxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    shared: Arc<Shared>,
    accept_task: JoinHandle<()>,
}

impl MqttProxy {
    /// Starts a proxy that forwards to `upstream`. It connects to `upstream` once for each
    /// client connection, when that connection is accepted.
    pub async fn start(upstream: SocketAddr) -> anyhow::Result<MqttProxy> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .context("failed to bind the MQTT proxy to a free 127.0.0.1 port")?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let accept_task = tokio::spawn(accept_loop(listener, upstream, Arc::clone(&shared)));
        Ok(MqttProxy {
            addr,
            upstream,
            shared,
            accept_task,
        })
    }

    /// Returns the address that clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Returns the broker address that connections are forwarded to.
    pub fn upstream(&self) -> SocketAddr {
        self.upstream
    }

    /// Closes every open client connection and its upstream connection, and returns how many
    /// it closed. It aborts their tasks, so the sockets close when the runtime next polls
    /// them: on a current-thread runtime, when the caller next yields. New connections are
    /// accepted afterwards.
    pub fn cut(&self) -> usize {
        let connections: Vec<AbortHandle> = self
            .shared
            .connections()
            .drain()
            .map(|(_, handle)| handle)
            .collect();
        for handle in &connections {
            handle.abort();
        }
        connections.len()
    }

    /// Rejects new connections until [`MqttProxy::resume`]: the proxy accepts each one and
    /// closes it at once, before any byte is forwarded. Open connections stay open.
    pub fn pause(&self) {
        self.shared.paused.store(true, Ordering::SeqCst);
    }

    /// Forwards new connections again after [`MqttProxy::pause`].
    pub fn resume(&self) {
        self.shared.paused.store(false, Ordering::SeqCst);
    }

    /// Silently drops the next `count` packets of `packet_type` that clients send, on any
    /// connection, for example `packet_type::PUBACK` to make the broker redeliver. Calls add up.
    ///
    /// # Panics
    ///
    /// Panics when `packet_type` is not 0 to 15.
    pub fn drop_client_packets(&self, packet_type: u8, count: usize) {
        let index = type_index(packet_type);
        self.shared.rules().drop_remaining[index] += count;
    }

    /// Closes the connection that carries the next client packet of `packet_type`, right
    /// after forwarding (or dropping) that packet. Bytes that the client sent after it in
    /// the same read are discarded. The rule applies once, to the first connection that
    /// sends such a packet.
    ///
    /// # Panics
    ///
    /// Panics when `packet_type` is not 0 to 15.
    pub fn cut_after_client_packet(&self, packet_type: u8) {
        let index = type_index(packet_type);
        self.shared.rules().cut_after[index] = true;
    }

    /// Returns the number of client connections forwarded upstream so far.
    pub fn connections_accepted(&self) -> u64 {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Returns the number of client connections closed at once while the proxy was paused.
    pub fn connections_rejected(&self) -> u64 {
        self.shared.rejected.load(Ordering::SeqCst)
    }

    /// Returns the number of client connections closed because the upstream connection
    /// failed.
    pub fn upstream_failures(&self) -> u64 {
        self.shared.upstream_failures.load(Ordering::SeqCst)
    }

    /// Returns the number of client connections that are open now.
    pub fn open_connections(&self) -> usize {
        self.shared.connections().len()
    }

    /// Returns how many complete fixed headers of `packet_type` clients have sent, dropped
    /// packets included.
    ///
    /// # Panics
    ///
    /// Panics when `packet_type` is not 0 to 15.
    pub fn client_packets(&self, packet_type: u8) -> u64 {
        self.shared.seen[type_index(packet_type)].load(Ordering::SeqCst)
    }

    /// Returns how many client packets of `packet_type` the proxy has dropped.
    ///
    /// # Panics
    ///
    /// Panics when `packet_type` is not 0 to 15.
    pub fn client_packets_dropped(&self, packet_type: u8) -> u64 {
        self.shared.dropped[type_index(packet_type)].load(Ordering::SeqCst)
    }
}

impl Drop for MqttProxy {
    fn drop(&mut self) {
        self.accept_task.abort();
        self.cut();
    }
}

fn type_index(packet_type: u8) -> usize {
    assert!(
        packet_type < 16,
        "MQTT packet type {packet_type} is out of range 0 to 15"
    );
    usize::from(packet_type)
}

async fn accept_loop(listener: TcpListener, upstream: SocketAddr, shared: Arc<Shared>) {
    loop {
        let client = match listener.accept().await {
            Ok((client, _)) => client,
            // Errors such as EMFILE concern one connection attempt, so keep accepting.
            Err(_) => continue,
        };
        if shared.paused.load(Ordering::SeqCst) {
            shared.rejected.fetch_add(1, Ordering::SeqCst);
            drop(client);
            continue;
        }
        shared.accepted.fetch_add(1, Ordering::SeqCst);
        let id = shared.next_connection.fetch_add(1, Ordering::SeqCst);
        // The lock is held until the handle is stored, so a connection that ends at once
        // still finds its own entry to remove.
        let mut connections = shared.connections();
        let task = tokio::spawn(serve_connection(id, client, upstream, Arc::clone(&shared)));
        connections.insert(id, task.abort_handle());
    }
}

/// End of the client-to-broker direction.
enum ClientEnd {
    /// The client closed its side.
    Closed,
    /// A `cut_after_client_packet` rule fired.
    Cut,
}

async fn serve_connection(id: u64, client: TcpStream, upstream: SocketAddr, shared: Arc<Shared>) {
    let broker = match TcpStream::connect(upstream).await {
        Ok(broker) => broker,
        Err(_) => {
            shared.upstream_failures.fetch_add(1, Ordering::SeqCst);
            shared.connections().remove(&id);
            return;
        }
    };
    // MQTT packets are small and latency-bound, as in the clients and brokers themselves.
    let _ = client.set_nodelay(true);
    let _ = broker.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (broker_read, broker_write) = broker.into_split();

    let forward = forward_client_packets(client_read, broker_write, &shared);
    let backward = copy_to_client(broker_read, client_write);
    tokio::pin!(forward, backward);
    tokio::select! {
        end = &mut forward => {
            // After a clean close, let the broker finish; a cut or an error closes both now.
            if let Ok(ClientEnd::Closed) = end {
                let _ = backward.await;
            }
        }
        end = &mut backward => {
            if end.is_ok() {
                let _ = forward.await;
            }
        }
    }
    shared.connections().remove(&id);
}

async fn copy_to_client(mut from: OwnedReadHalf, mut to: OwnedWriteHalf) -> io::Result<()> {
    tokio::io::copy(&mut from, &mut to).await?;
    to.shutdown().await
}

async fn forward_client_packets(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    shared: &Shared,
) -> io::Result<ClientEnd> {
    let mut reader = FrameReader::new();
    let mut input = vec![0u8; READ_BUFFER_BYTES];
    let mut output = Vec::with_capacity(READ_BUFFER_BYTES);
    let mut dropping = false;
    let mut cut_at_end = false;
    loop {
        let read = from.read(&mut input).await?;
        if read == 0 {
            to.shutdown().await?;
            return Ok(ClientEnd::Closed);
        }
        let mut position = 0;
        let mut cut_now = false;
        loop {
            let (used, event) = reader
                .next(&input[position..read])
                .map_err(|err| io::Error::new(io::ErrorKind::InvalidData, err))?;
            position += used;
            match event {
                None => break,
                Some(FrameEvent::Header(header)) => {
                    let index = usize::from(header.packet_type);
                    shared.seen[index].fetch_add(1, Ordering::SeqCst);
                    let mut rules = shared.rules();
                    dropping = rules.drop_remaining[index] > 0;
                    if dropping {
                        rules.drop_remaining[index] -= 1;
                        shared.dropped[index].fetch_add(1, Ordering::SeqCst);
                    } else {
                        output.extend_from_slice(reader.header_bytes());
                    }
                    cut_at_end = rules.cut_after[index];
                    rules.cut_after[index] = false;
                }
                Some(FrameEvent::Body(body)) => {
                    if !dropping {
                        output.extend_from_slice(body);
                    }
                }
                Some(FrameEvent::End(_)) => {
                    dropping = false;
                    if cut_at_end {
                        cut_now = true;
                        break;
                    }
                }
            }
        }
        to.write_all(&output).await?;
        output.clear();
        if cut_now {
            // A FIN after the forwarded bytes lets the broker read them. Dropping a socket
            // that has unread input sends a RST at once and discards data not yet sent.
            to.shutdown().await?;
            return Ok(ClientEnd::Cut);
        }
    }
}
