//! The flow table: which connection a packet belongs to, and each direction's hello state.
//!
//! A connection (TCP, or a UDP 4-tuple) is keyed by its endpoints in canonical order and numbered
//! in order of first appearance, per protocol, like Wireshark's `tcp.stream` / `udp.stream`. Each
//! direction is its own candidate client: TLS, QUIC and DTLS are recognised by content, on any
//! port. Once one direction reads a hello, the other is the server and is ignored.
//!
//! Memory is bounded three ways: a direction frees its buffers as soon as its hello is out (or it
//! proved not to be TLS), leaving a few bytes of tombstone; connections idle longer than the
//! timeout are dropped; and the table holds at most `max_flows` connections, refusing new ones
//! (counted) when even tombstones cannot be reclaimed.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::Duration;

use crate::hello::{HelloReader, Progress, ReadError, Transport};

use super::decode::{self, Packet};
use super::dtls::{self, DtlsHellos};
use super::quic::{self, ClientInitials};
use super::tcp::{Position, TcpStream};

const CONTENT_CCS: u8 = 20;
const CONTENT_HANDSHAKE: u8 = 22;
/// How many segments of a non-TLS start may each be the start of a ClientHello.
const PREAMBLE_SEGMENTS: u8 = 8;

/// Limits of the flow table.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest ClientHello accepted (handshake header included).
    pub max_hello_len: usize,
    /// Connections tracked at once.
    pub max_flows: usize,
    /// Directions holding buffers (a hello in progress) at once: with the per-direction caps,
    /// this bounds the table's memory whatever the capture.
    pub max_open_hellos: usize,
    /// A connection with no packet for this long (capture time) is forgotten.
    pub idle_timeout: Duration,
    /// Also report the second ClientHello of a connection (the retry after HelloRetryRequest).
    pub all_hellos: bool,
}

/// What one packet produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// A complete ClientHello message, ready for `hello::ClientHello::parse`.
    Hello { stream: u64, transport: Transport, message: Vec<u8>, index: u8 },
    /// A direction that gave up, with the summary reason.
    Skipped(&'static str),
    /// A new connection entered the table.
    NewFlow,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Endpoint {
    addr: IpAddr,
    port: u16,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct ConnKey {
    tcp: bool,
    low: Endpoint,
    high: Endpoint,
}

struct Conn {
    stream: u64,
    last_seen: Duration,
    /// `[low → high, high → low]`.
    dirs: [Dir; 2],
}

enum Dir {
    /// Nothing decided yet (no payload seen).
    Idle,
    /// A TCP SYN and no data yet: offset 0 is known, nothing is buffered.
    Syn {
        seq: u32,
    },
    /// A TCP direction that started with plain text and holds nothing (no segment waits out of
    /// order): where its stream stands, and how many more segments may start a hello. It takes no
    /// allocation, so a table full of plain-text connections stays small.
    Plain {
        at: Position,
        fresh_starts: u8,
    },
    Tcp(Box<TcpHello>),
    Quic(Box<ClientInitials>),
    Dtls(Box<DtlsHellos>),
    /// Nothing more to do: hello reported, server side, or gave up. `client` remembers whether
    /// this direction spoke TLS first, so the reply direction is still recognised as the server.
    Done {
        client: bool,
    },
}

impl Dir {
    fn is_client(&self) -> bool {
        match self {
            Dir::Tcp(t) => t.state.tls,
            Dir::Quic(_) | Dir::Dtls(_) => true,
            Dir::Done { client } => *client,
            Dir::Idle | Dir::Syn { .. } | Dir::Plain { .. } => false,
        }
    }

    /// Holds buffers: counts against [`Limits::max_open_hellos`]. A TCP direction still looking
    /// past a non-TLS start holds none (unless segments wait out of order), so a plain-text
    /// connection does not take a slot for its whole life.
    fn is_open(&self) -> bool {
        match self {
            Dir::Tcp(t) => t.state.tls || t.stream.has_ahead(),
            Dir::Quic(_) | Dir::Dtls(_) => true,
            Dir::Idle | Dir::Syn { .. } | Dir::Plain { .. } | Dir::Done { .. } => false,
        }
    }
}

fn open_dirs(conn: &Conn) -> usize {
    conn.dirs.iter().filter(|d| d.is_open()).count()
}

/// The connection table; see the module docs.
pub struct Flows {
    limits: Limits,
    /// foldhash: several times faster than SipHash on these small keys, and seeded per process.
    conns: HashMap<ConnKey, Conn, foldhash::fast::RandomState>,
    /// Per protocol: `[tcp, udp]`.
    next_stream: [u64; 2],
    /// Directions with [`Dir::is_open`] in the table.
    open: usize,
    last_sweep: Duration,
    /// The one decrypted QUIC packet at a time, shared by every QUIC flow.
    quic_scratch: Vec<u8>,
    /// Connections in the order they finished (both directions done), the first to go when the
    /// table is full. Swept keys are taken out with their connections.
    finished: VecDeque<ConnKey>,
}

impl Flows {
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            conns: HashMap::default(),
            next_stream: [0, 0],
            open: 0,
            last_sweep: Duration::ZERO,
            quic_scratch: Vec::new(),
            finished: VecDeque::new(),
        }
    }

    /// Take one decoded packet; hellos and skip reasons go to `events`.
    pub fn packet(&mut self, packet: &Packet<'_>, now: Duration, events: &mut Vec<Event>) {
        let tcp = matches!(packet.transport, decode::Transport::Tcp { .. });
        let src = Endpoint { addr: packet.src, port: packet.src_port };
        let dst = Endpoint { addr: packet.dst, port: packet.dst_port };
        let (key, dir) = if src <= dst {
            (ConnKey { tcp, low: src, high: dst }, 0)
        } else {
            (ConnKey { tcp, low: dst, high: src }, 1)
        };
        self.sweep(now);
        let full = self.conns.len() >= self.limits.max_flows;
        if full && !self.conns.contains_key(&key) && !self.make_room() {
            events.push(Event::Skipped("flow_table_full"));
            return;
        }
        let limits = self.limits;
        let next_stream = &mut self.next_stream[usize::from(!tcp)];
        // One lookup per packet.
        let conn = self.conns.entry(key).or_insert_with(|| {
            events.push(Event::NewFlow);
            let stream = *next_stream;
            *next_stream += 1;
            Conn { stream, last_seen: now, dirs: [Dir::Idle, Dir::Idle] }
        });
        conn.last_seen = conn.last_seen.max(now);
        // The common case on a busy link: bulk data of a connection already settled.
        if let Some(Dir::Done { .. }) = conn.dirs.get(dir) {
            return;
        }
        let open = &mut self.open;
        direction_packet(conn, dir, packet, &limits, open, &mut self.quic_scratch, events);
        if is_finished(conn) {
            self.finished.push_back(key);
        }
    }

    /// Forget idle connections, at most about twice per timeout period.
    fn sweep(&mut self, now: Duration) {
        let timeout = self.limits.idle_timeout;
        if now < self.last_sweep + timeout / 2 {
            return;
        }
        self.last_sweep = now;
        let open = &mut self.open;
        self.conns.retain(|_, c| {
            let keep = c.last_seen + timeout >= now;
            if !keep {
                *open -= open_dirs(c);
            }
            keep
        });
        let conns = &self.conns;
        self.finished.retain(|key| conns.contains_key(key));
    }

    /// True when a new connection fits, after dropping the oldest finished one if the table is
    /// full. Constant time per packet on average: a table full of unfinished connections is not
    /// searched, however many packets of new connections arrive.
    fn make_room(&mut self) -> bool {
        if self.conns.len() < self.limits.max_flows {
            return true;
        }
        while let Some(key) = self.finished.pop_front() {
            // A key is queued once per time its connection finished; it may since have been
            // swept out and come back unfinished.
            if self.conns.get(&key).is_some_and(is_finished) {
                self.conns.remove(&key);
                return true;
            }
        }
        false
    }
}

/// One packet of a connection whose direction `dir` is not done yet; `open` counts directions
/// holding buffers.
fn direction_packet(
    conn: &mut Conn,
    dir: usize,
    packet: &Packet<'_>,
    limits: &Limits,
    open: &mut usize,
    quic_scratch: &mut Vec<u8>,
    events: &mut Vec<Event>,
) {
    let stream = conn.stream;
    let [a, b] = &mut conn.dirs;
    let (this, other) = if dir == 0 { (a, b) } else { (b, a) };
    if other.is_client() {
        *open -= usize::from(this.is_open());
        *this = Dir::Done { client: false };
        return;
    }
    let (decode::Transport::Tcp { payload, .. } | decode::Transport::Udp { payload }) = packet.transport;
    let was_open = this.is_open();
    if !was_open && !payload.is_empty() && *open >= limits.max_open_hellos {
        events.push(Event::Skipped("too_many_open_hellos"));
        *this = Dir::Done { client: false };
        return;
    }
    match packet.transport {
        decode::Transport::Tcp { seq, syn, payload } => tcp_segment(this, limits, stream, seq, syn, payload, events),
        decode::Transport::Udp { payload } => udp_datagram(this, limits, stream, payload, quic_scratch, events),
    }
    *open = *open + usize::from(this.is_open()) - usize::from(was_open);
}

/// Both directions are done: the connection may be dropped when the table needs room.
fn is_finished(conn: &Conn) -> bool {
    conn.dirs.iter().all(|d| matches!(d, Dir::Done { .. }))
}

fn udp_datagram(
    this: &mut Dir,
    limits: &Limits,
    stream: u64,
    payload: &[u8],
    quic_scratch: &mut Vec<u8>,
    events: &mut Vec<Event>,
) {
    if matches!(this, Dir::Idle) {
        *this = if quic::is_initial(payload) {
            Dir::Quic(Box::new(ClientInitials::new(limits.max_hello_len)))
        } else if dtls::is_handshake(payload) {
            Dir::Dtls(Box::new(DtlsHellos::new(limits.max_hello_len)))
        } else {
            Dir::Done { client: false }
        };
    }
    match this {
        Dir::Quic(initials) => {
            // A later datagram that is not an Initial (a Handshake or 1-RTT packet) is normal.
            let result = initials.datagram(payload, quic_scratch).or_else(|e| match e {
                quic::QuicError::NotInitial => Ok(()),
                other => Err(other),
            });
            match result.and_then(|()| initials.message().map(|m| m.map(<[u8]>::to_vec))) {
                Ok(None) => {}
                Ok(Some(message)) => {
                    events.push(Event::Hello { stream, transport: Transport::Quic, message, index: 1 });
                    *this = Dir::Done { client: true };
                }
                Err(e) => {
                    events.push(Event::Skipped(e.reason()));
                    *this = Dir::Done { client: false };
                }
            }
        }
        Dir::Dtls(hellos) => {
            let wanted = if limits.all_hellos { 2 } else { 1 };
            let mut finished = false;
            let result = hellos.datagram(payload, &mut |message, index| {
                if index <= wanted {
                    let message = message.to_vec();
                    events.push(Event::Hello { stream, transport: Transport::Dtls, message, index });
                }
                finished |= index >= wanted;
            });
            if let Err(e) = &result {
                events.push(Event::Skipped(e.reason()));
            }
            if finished || result.is_err() {
                *this = Dir::Done { client: true };
            }
        }
        _ => {}
    }
}

/// One TCP direction reading its ClientHello(s).
struct TcpHello {
    stream: TcpStream,
    state: TcpState,
}

/// Between the first hello and a possible retry: the client sends ChangeCipherSpec records
/// (TLS 1.3 middlebox compatibility) and then, after a HelloRetryRequest, its second hello.
#[derive(Default)]
struct AfterHello {
    head: [u8; 5],
    head_len: usize,
    /// Bytes of a ChangeCipherSpec record still to skip.
    skip: usize,
}

fn tcp_segment(
    this: &mut Dir,
    limits: &Limits,
    stream: u64,
    seq: u32,
    syn: bool,
    payload: &[u8],
    events: &mut Vec<Event>,
) {
    let window = reorder_window(limits);
    let mut fresh = match *this {
        Dir::Idle | Dir::Syn { .. } | Dir::Plain { .. } if payload.is_empty() && !syn => return,
        Dir::Idle | Dir::Syn { .. } if payload.is_empty() => {
            *this = Dir::Syn { seq };
            return;
        }
        Dir::Idle => TcpHello::new(TcpStream::new(window), limits, PREAMBLE_SEGMENTS),
        Dir::Syn { seq } => {
            let mut stream = TcpStream::new(window);
            // Data-less, so nothing reaches the sink and nothing can overflow.
            let _ = stream.segment(seq, true, &[], &mut |_| true);
            TcpHello::new(stream, limits, PREAMBLE_SEGMENTS)
        }
        Dir::Plain { at, fresh_starts } => TcpHello::new(TcpStream::resume(window, at), limits, fresh_starts),
        Dir::Tcp(ref mut hello) => {
            if let Some(next) = hello.segment(limits, stream, seq, syn, payload, events) {
                *this = next;
            }
            return;
        }
        _ => return,
    };
    // A direction's first data: boxed only when its hello is still in progress after it (a hello
    // in one segment, the common case, never is).
    *this = match fresh.segment(limits, stream, seq, syn, payload, events) {
        Some(next) => next,
        None => Dir::Tcp(Box::new(fresh)),
    };
}

/// How far out-of-order data is kept: it matters only up to the end of the last hello reported
/// (a preamble and record headers fit in the slack).
fn reorder_window(limits: &Limits) -> u32 {
    let hellos = if limits.all_hellos { 2 } else { 1 };
    u32::try_from(limits.max_hello_len * hellos + 1024).unwrap_or(u32::MAX)
}

impl TcpHello {
    fn new(stream: TcpStream, limits: &Limits, fresh_starts: u8) -> Self {
        TcpHello {
            stream,
            state: TcpState {
                reader: HelloReader::new(limits.max_hello_len),
                tls: false,
                fresh_starts,
                hellos: 0,
                after: AfterHello::default(),
            },
        }
    }

    /// One segment of this direction. Returns the direction's next state when it leaves
    /// `Dir::Tcp`: done, or back to plain text with nothing kept.
    fn segment(
        &mut self,
        limits: &Limits,
        stream: u64,
        seq: u32,
        syn: bool,
        payload: &[u8],
        events: &mut Vec<Event>,
    ) -> Option<Dir> {
        let TcpHello { stream: tcp, state } = self;
        let mut finished = false;
        let result = tcp.segment(seq, syn, payload, &mut |bytes| {
            let go_on = state.bytes(bytes, limits, stream, events);
            finished |= !go_on;
            go_on
        });
        if result.is_err() {
            events.push(Event::Skipped("tcp_out_of_order_overflow"));
            finished = true;
        }
        if finished {
            Some(Dir::Done { client: state.tls })
        } else {
            tcp.park().filter(|_| !state.tls).map(|at| Dir::Plain { at, fresh_starts: state.fresh_starts })
        }
    }
}

/// The byte-level side of [`TcpHello`]: the hello reader and what follows a first hello.
struct TcpState {
    reader: HelloReader,
    /// The reader accepted this direction's bytes: it is the client.
    tls: bool,
    /// Stream chunks (segments) still allowed to start the hello: TLS behind a SOCKS or HTTP
    /// CONNECT preamble starts at a segment boundary after the proxy's answer.
    fresh_starts: u8,
    hellos: u8,
    after: AfterHello,
}

impl TcpState {
    /// In-order client bytes; returns `false` once the direction is finished.
    fn bytes(&mut self, mut bytes: &[u8], limits: &Limits, stream: u64, events: &mut Vec<Event>) -> bool {
        while !bytes.is_empty() {
            if self.hellos > 0 && self.reader.message().is_some() {
                // Looking for a retry: skip ChangeCipherSpec records, restart on a handshake record.
                match self.between_hellos(&mut bytes) {
                    Between::NeedMore => return true,
                    Between::Handshake(head) => {
                        self.reader.reset();
                        if self.reader.feed(&head).is_err() {
                            return false;
                        }
                    }
                    Between::Other => return false,
                }
                continue;
            }
            let result = self.reader.feed(bytes);
            self.tls |= result.is_ok();
            match result {
                Ok(Progress::NeedMore) => return true,
                Ok(Progress::Complete { consumed }) => {
                    self.hellos += 1;
                    let last = !limits.all_hellos || self.hellos >= 2;
                    let message = if last {
                        // The direction is finished: the reader's buffer goes out as it is.
                        std::mem::take(&mut self.reader).into_message()
                    } else {
                        self.reader.message().map(<[u8]>::to_vec)
                    };
                    let message = message.unwrap_or_default();
                    events.push(Event::Hello { stream, transport: Transport::Tcp, message, index: self.hellos });
                    if last {
                        return false;
                    }
                    self.after = AfterHello::default();
                    bytes = bytes.get(consumed..).unwrap_or_default();
                }
                Err(ReadError::NotTls(_)) if self.hellos == 0 && self.fresh_starts > 0 => {
                    // Maybe a proxy preamble: try again at the start of the next segment.
                    self.fresh_starts -= 1;
                    self.reader.reset();
                    return true;
                }
                Err(e) => {
                    // A failed retry is not worth a count: the connection's hello is out.
                    if self.hellos == 0 {
                        events.push(Event::Skipped(e.reason()));
                    }
                    return false;
                }
            }
        }
        true
    }

    fn between_hellos(&mut self, bytes: &mut &[u8]) -> Between {
        let after = &mut self.after;
        while !bytes.is_empty() {
            if after.skip > 0 {
                let n = after.skip.min(bytes.len());
                after.skip -= n;
                *bytes = bytes.get(n..).unwrap_or_default();
                continue;
            }
            let n = (5 - after.head_len).min(bytes.len());
            after.head[after.head_len..after.head_len + n].copy_from_slice(&bytes[..n]);
            after.head_len += n;
            *bytes = bytes.get(n..).unwrap_or_default();
            if after.head_len < 5 {
                return Between::NeedMore;
            }
            after.head_len = 0;
            match after.head[0] {
                CONTENT_CCS => after.skip = usize::from(u16::from_be_bytes([after.head[3], after.head[4]])),
                CONTENT_HANDSHAKE => return Between::Handshake(after.head),
                _ => return Between::Other,
            }
        }
        Between::NeedMore
    }
}

enum Between {
    NeedMore,
    /// A handshake record header: the retry's first bytes.
    Handshake([u8; 5]),
    Other,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    const SERVER: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));

    fn limits(all_hellos: bool) -> Limits {
        Limits {
            max_hello_len: 16 * 1024,
            max_flows: 4,
            max_open_hellos: 2,
            idle_timeout: Duration::from_secs(60),
            all_hellos,
        }
    }

    fn segment(from_client: bool, seq: u32, syn: bool, payload: &[u8]) -> Packet<'_> {
        let (src, dst, src_port, dst_port) =
            if from_client { (CLIENT, SERVER, 5555, 443) } else { (SERVER, CLIENT, 443, 5555) };
        let transport = decode::Transport::Tcp { seq, syn, payload };
        Packet { src, dst, src_port, dst_port, transport }
    }

    /// A ClientHello handshake message with `body_len` body bytes, as one TLS record.
    fn hello_record(body_len: usize) -> Vec<u8> {
        let mut r = vec![22, 3, 1, 0, (body_len + 4) as u8, 1, 0, 0, body_len as u8];
        r.extend((0..body_len).map(|i| i as u8));
        r
    }

    fn run(flows: &mut Flows, packets: &[Packet<'_>]) -> Vec<Event> {
        let mut events = Vec::new();
        for (i, p) in packets.iter().enumerate() {
            flows.packet(p, Duration::from_secs(i as u64), &mut events);
        }
        events.retain(|e| e != &Event::NewFlow);
        events
    }

    fn hellos(events: &[Event]) -> Vec<(u8, usize)> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::Hello { index, message, .. } => Some((*index, message.len())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn server_side_is_ignored_and_retry_needs_all_hellos() {
        let hello = hello_record(40);
        let mut after = vec![20, 3, 3, 0, 1, 1];
        after.extend(hello_record(30));
        let packets = [
            segment(true, 100, true, b""),
            segment(false, 900, true, b""),
            segment(true, 101, false, &hello),
            segment(false, 901, false, &[22, 3, 3, 0, 4, 2, 0, 0, 0]), // a ServerHello-ish reply
            segment(true, 101 + hello.len() as u32, false, &after),
        ];
        let events = run(&mut Flows::new(limits(false)), &packets);
        assert_eq!(hellos(&events), [(1, 44)]);
        assert!(!events.iter().any(|e| matches!(e, Event::Skipped(_))), "{events:?}");
        let events = run(&mut Flows::new(limits(true)), &packets);
        assert_eq!(hellos(&events), [(1, 44), (2, 34)]);
    }

    #[test]
    fn hello_after_a_proxy_preamble_and_split_out_of_order() {
        let hello = hello_record(60);
        let connect = b"CONNECT example.com:443 HTTP/1.1\r\n\r\n";
        let start = 101 + connect.len() as u32;
        let packets = [
            segment(true, 100, true, b""),
            segment(true, 101, false, connect),
            segment(false, 901, false, b"HTTP/1.1 200 OK\r\n\r\n"),
            segment(true, start + 20, false, &hello[20..]),
            segment(true, start, false, &hello[..25]),
        ];
        let events = run(&mut Flows::new(limits(false)), &packets);
        assert_eq!(hellos(&events), [(1, 64)]);
    }

    #[test]
    fn not_tls_gives_up_after_the_preamble_allowance() {
        let mut packets = vec![segment(true, 100, true, b"")];
        let line = b"SSH-2.0-OpenSSH_9.2\r\n";
        for i in 0..=u32::from(PREAMBLE_SEGMENTS) {
            packets.push(segment(true, 101 + i * line.len() as u32, false, line));
        }
        let mut flows = Flows::new(limits(false));
        let events = run(&mut flows, &packets[..2]);
        assert!(events.is_empty());
        assert_eq!(flows.open, 0, "a plain-text start holds no hello slot");
        let conn = flows.conns.values().next().unwrap();
        assert!(matches!(conn.dirs[0], Dir::Plain { fresh_starts: 7, .. }), "nor any allocation");
        let events = run(&mut flows, &packets[2..]);
        assert_eq!(events, [Event::Skipped("not_tls")]);
    }

    #[test]
    fn open_hellos_are_bounded_and_released() {
        let mut flows = Flows::new(limits(false));
        let mut events = Vec::new();
        let hello = hello_record(100);
        let partial = &hello[..50];
        for port in 0..3u16 {
            let mut p = segment(true, 1, false, partial);
            p.src_port = port;
            flows.packet(&p, Duration::ZERO, &mut events);
        }
        assert_eq!(flows.open, 2);
        assert_eq!(events.iter().filter(|e| **e == Event::Skipped("too_many_open_hellos")).count(), 1);
        // A finished hello frees its slot; so does the idle timeout.
        let mut rest = segment(true, 51, false, &hello[50..]);
        rest.src_port = 0;
        flows.packet(&rest, Duration::ZERO, &mut events);
        assert_eq!(flows.open, 1);
        flows.packet(&segment(true, 1, true, b""), Duration::from_secs(120), &mut events);
        assert_eq!(flows.open, 0);
    }

    #[test]
    fn a_full_table_drops_the_oldest_finished_connection() {
        let mut flows = Flows::new(limits(false));
        let mut events = Vec::new();
        let hello = hello_record(40);
        for port in 0..5u16 {
            let mut from_client = segment(true, 1, false, &hello);
            from_client.src_port = port;
            let mut reply = segment(false, 1, false, b"server");
            reply.dst_port = port;
            flows.packet(&from_client, Duration::ZERO, &mut events);
            flows.packet(&reply, Duration::ZERO, &mut events);
        }
        assert_eq!(hellos(&events).len(), 5);
        assert!(!events.contains(&Event::Skipped("flow_table_full")), "{events:?}");
        assert_eq!(flows.conns.len(), 4);
        assert!(flows.conns.keys().all(|k| k.low.port != 0 && k.high.port != 0), "port 0 finished first");
        // Unfinished connections are never dropped: a table full of them refuses new ones.
        let mut unfinished = Flows::new(limits(false));
        for port in 0..1000u16 {
            let mut syn = segment(true, 1, true, b"");
            syn.src_port = port;
            unfinished.packet(&syn, Duration::ZERO, &mut events);
        }
        assert_eq!(unfinished.conns.len(), 4);
        assert!(unfinished.finished.is_empty());
    }

    #[test]
    fn table_is_bounded() {
        let mut flows = Flows::new(limits(false));
        let mut events = Vec::new();
        for port in 0..6u16 {
            let mut p = segment(true, 1, true, b"");
            p.src_port = port;
            flows.packet(&p, Duration::ZERO, &mut events);
        }
        assert_eq!(flows.conns.len(), 4);
        assert_eq!(events.iter().filter(|e| **e == Event::Skipped("flow_table_full")).count(), 2);
        // Past the idle timeout the table empties and takes new connections again.
        flows.packet(&segment(true, 1, true, b""), Duration::from_secs(120), &mut events);
        assert_eq!(flows.conns.len(), 1);
    }
}
