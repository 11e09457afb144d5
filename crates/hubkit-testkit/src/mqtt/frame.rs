//! MQTT fixed-header parsing for a byte stream, after MQTT 3.1.1 section 2.2. The packet
//! type is the high nibble of the first byte. The remaining length follows as a
//! variable-length integer of one to four bytes, seven bits each, least significant first.

/// Largest remaining length that four length bytes can encode.
pub const MAX_REMAINING_LENGTH: usize = 268_435_455;

/// MQTT control packet type numbers (the high nibble of a packet's first byte).
pub mod packet_type {
    /// CONNECT, client to broker.
    pub const CONNECT: u8 = 1;
    /// CONNACK, broker to client.
    pub const CONNACK: u8 = 2;
    /// PUBLISH, both directions.
    pub const PUBLISH: u8 = 3;
    /// PUBACK, the QoS 1 acknowledgement.
    pub const PUBACK: u8 = 4;
    /// PUBREC, the first QoS 2 acknowledgement.
    pub const PUBREC: u8 = 5;
    /// PUBREL, the QoS 2 release.
    pub const PUBREL: u8 = 6;
    /// PUBCOMP, the last QoS 2 acknowledgement.
    pub const PUBCOMP: u8 = 7;
    /// SUBSCRIBE, client to broker.
    pub const SUBSCRIBE: u8 = 8;
    /// SUBACK, broker to client.
    pub const SUBACK: u8 = 9;
    /// UNSUBSCRIBE, client to broker.
    pub const UNSUBSCRIBE: u8 = 10;
    /// UNSUBACK, broker to client.
    pub const UNSUBACK: u8 = 11;
    /// PINGREQ, client to broker.
    pub const PINGREQ: u8 = 12;
    /// PINGRESP, broker to client.
    pub const PINGRESP: u8 = 13;
    /// DISCONNECT, client to broker.
    pub const DISCONNECT: u8 = 14;
}

/// A parsed MQTT fixed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedHeader {
    /// Control packet type, 0 to 15 (see [`packet_type`]).
    pub packet_type: u8,
    /// Low nibble of the first byte: DUP, QoS and RETAIN for PUBLISH.
    pub flags: u8,
    /// Length of the variable header and payload in bytes.
    pub remaining_length: usize,
    /// Length of the fixed header itself, 2 to 5 bytes.
    pub header_length: usize,
}

impl FixedHeader {
    /// Returns the length of the whole packet: fixed header plus remaining length.
    pub fn packet_length(&self) -> usize {
        self.header_length + self.remaining_length
    }
}

/// An invalid fixed header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The fourth remaining-length byte has its continuation bit set.
    #[error("malformed MQTT remaining length: more than 4 bytes (header starts {0:02x?})")]
    RemainingLengthTooLong([u8; 5]),
}

/// Parses the fixed header at the start of `bytes`, or returns `Ok(None)` when `bytes`
/// ends before the header does.
pub fn parse_fixed_header(bytes: &[u8]) -> Result<Option<FixedHeader>, FrameError> {
    let Some(&first) = bytes.first() else {
        return Ok(None);
    };
    let mut remaining_length = 0usize;
    for index in 0..4 {
        let Some(&byte) = bytes.get(1 + index) else {
            return Ok(None);
        };
        remaining_length |= usize::from(byte & 0x7f) << (7 * index);
        if byte & 0x80 == 0 {
            return Ok(Some(FixedHeader {
                packet_type: first >> 4,
                flags: first & 0x0f,
                remaining_length,
                header_length: 2 + index,
            }));
        }
    }
    let mut start = [0u8; 5];
    start.copy_from_slice(&bytes[..5]);
    Err(FrameError::RemainingLengthTooLong(start))
}

/// Appends `length` to `out` as an MQTT variable-length integer.
///
/// # Panics
///
/// Panics when `length` exceeds [`MAX_REMAINING_LENGTH`].
pub fn encode_remaining_length(length: usize, out: &mut Vec<u8>) {
    assert!(
        length <= MAX_REMAINING_LENGTH,
        "remaining length {length} exceeds the MQTT maximum {MAX_REMAINING_LENGTH}"
    );
    let mut rest = length;
    loop {
        // The mask keeps seven bits, so the cast cannot truncate.
        let mut byte = (rest & 0x7f) as u8;
        rest >>= 7;
        if rest > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if rest == 0 {
            break;
        }
    }
}

/// One step of [`FrameReader::next`].
#[derive(Debug, PartialEq, Eq)]
pub enum FrameEvent<'a> {
    /// A packet's fixed header is complete. Its raw bytes are in
    /// [`FrameReader::header_bytes`] until the next call.
    Header(FixedHeader),
    /// Bytes of the current packet's variable header and payload, borrowed from the input.
    Body(&'a [u8]),
    /// The current packet is complete.
    End(FixedHeader),
}

#[derive(Debug)]
enum ReadState {
    Header,
    Body { header: FixedHeader, left: usize },
}

/// Splits a byte stream into MQTT control packets, one piece at a time, without holding
/// payloads in memory. Reads may end anywhere, including inside a fixed header.
#[derive(Debug)]
pub struct FrameReader {
    header: [u8; 5],
    header_filled: usize,
    state: ReadState,
}

impl Default for FrameReader {
    fn default() -> Self {
        FrameReader::new()
    }
}

impl FrameReader {
    /// Creates a reader that expects a fixed header first.
    pub fn new() -> FrameReader {
        FrameReader {
            header: [0; 5],
            header_filled: 0,
            state: ReadState::Header,
        }
    }

    /// Consumes bytes from the start of `input` and returns how many it used and the event
    /// they completed. `None` means that all usable input was consumed and more is needed.
    /// [`FrameEvent::End`] consumes nothing, so call again with the same rest of the input.
    pub fn next<'a>(
        &mut self,
        input: &'a [u8],
    ) -> Result<(usize, Option<FrameEvent<'a>>), FrameError> {
        match self.state {
            ReadState::Header => {
                let mut used = 0;
                while used < input.len() {
                    self.header[self.header_filled] = input[used];
                    self.header_filled += 1;
                    used += 1;
                    if let Some(header) = parse_fixed_header(&self.header[..self.header_filled])? {
                        self.state = ReadState::Body {
                            header,
                            left: header.remaining_length,
                        };
                        return Ok((used, Some(FrameEvent::Header(header))));
                    }
                }
                Ok((used, None))
            }
            ReadState::Body { header, left: 0 } => {
                self.state = ReadState::Header;
                self.header_filled = 0;
                Ok((0, Some(FrameEvent::End(header))))
            }
            ReadState::Body { header, left } => {
                if input.is_empty() {
                    return Ok((0, None));
                }
                let consumed = left.min(input.len());
                self.state = ReadState::Body {
                    header,
                    left: left - consumed,
                };
                Ok((consumed, Some(FrameEvent::Body(&input[..consumed]))))
            }
        }
    }

    /// Returns the raw bytes of the fixed header read so far, exactly as received.
    pub fn header_bytes(&self) -> &[u8] {
        &self.header[..self.header_filled]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO_MIB: usize = 2 * 1024 * 1024;

    /// Builds a packet with the given first byte and a body of `length` patterned bytes.
    fn packet(first_byte: u8, length: usize) -> Vec<u8> {
        let mut bytes = vec![first_byte];
        encode_remaining_length(length, &mut bytes);
        bytes.extend((0..length).map(|i| (i % 251) as u8));
        bytes
    }

    /// A packet rebuilt from the reader's events.
    #[derive(Debug, PartialEq, Eq)]
    struct Reassembled {
        header: FixedHeader,
        bytes: Vec<u8>,
    }

    /// Feeds `stream` to a reader in the given chunk sizes (cycled) and rebuilds the packets.
    fn read_in_chunks(stream: &[u8], chunk_sizes: &[usize]) -> Vec<Reassembled> {
        let mut reader = FrameReader::new();
        let mut packets = Vec::new();
        let mut current: Option<Reassembled> = None;
        let mut offset = 0;
        let mut chunk_index = 0;
        while offset < stream.len() {
            let size = chunk_sizes[chunk_index % chunk_sizes.len()].min(stream.len() - offset);
            chunk_index += 1;
            let chunk = &stream[offset..offset + size];
            offset += size;
            let mut position = 0;
            loop {
                let (used, event) = reader.next(&chunk[position..]).expect("valid stream");
                position += used;
                match event {
                    None => break,
                    Some(FrameEvent::Header(header)) => {
                        assert!(current.is_none(), "header inside a packet");
                        current = Some(Reassembled {
                            header,
                            bytes: reader.header_bytes().to_vec(),
                        });
                    }
                    Some(FrameEvent::Body(body)) => current
                        .as_mut()
                        .expect("body after a header")
                        .bytes
                        .extend_from_slice(body),
                    Some(FrameEvent::End(header)) => {
                        let done = current.take().expect("end after a header");
                        assert_eq!(done.header, header);
                        packets.push(done);
                    }
                }
            }
            assert_eq!(position, chunk.len(), "reader left input unconsumed");
        }
        // A packet whose last body byte ended the stream is reported on the next call.
        if let (_, Some(FrameEvent::End(header))) = reader.next(&[]).expect("valid stream") {
            let done = current.take().expect("end after a header");
            assert_eq!(done.header, header);
            packets.push(done);
        }
        assert!(current.is_none(), "stream ended inside a packet");
        packets
    }

    #[test]
    fn remaining_length_boundaries() {
        let cases = [
            (0, 2),
            (127, 2),
            (128, 3),
            (16_383, 3),
            (16_384, 4),
            (2_097_151, 4),
            (TWO_MIB, 5),
            (MAX_REMAINING_LENGTH, 5),
        ];
        for (length, header_length) in cases {
            let mut bytes = vec![0x32];
            encode_remaining_length(length, &mut bytes);
            assert_eq!(bytes.len(), header_length, "header length for {length}");
            let header = parse_fixed_header(&bytes)
                .expect("valid header")
                .expect("complete header");
            assert_eq!(header.packet_type, packet_type::PUBLISH);
            assert_eq!(header.flags, 0x2);
            assert_eq!(header.remaining_length, length);
            assert_eq!(header.header_length, header_length);
        }
    }

    #[test]
    fn partial_header_needs_more_bytes() {
        let mut bytes = vec![0x30];
        encode_remaining_length(16_384, &mut bytes);
        for end in 0..bytes.len() {
            assert_eq!(
                parse_fixed_header(&bytes[..end]),
                Ok(None),
                "prefix of {end} bytes"
            );
        }
    }

    #[test]
    fn five_length_bytes_are_rejected() {
        let bytes = [0x30, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert!(matches!(
            parse_fixed_header(&bytes),
            Err(FrameError::RemainingLengthTooLong(_))
        ));
        let mut reader = FrameReader::new();
        assert!(reader.next(&bytes).is_err());
    }

    #[test]
    fn reader_splits_each_length_whole() {
        for length in [0, 127, 128, 16_383, 16_384, TWO_MIB] {
            let bytes = packet(0x30, length);
            let packets = read_in_chunks(&bytes, &[bytes.len()]);
            assert_eq!(packets.len(), 1, "packets for length {length}");
            assert_eq!(packets[0].header.remaining_length, length);
            assert!(
                packets[0].bytes == bytes,
                "bytes differ for length {length}"
            );
        }
    }

    #[test]
    fn reader_handles_splits_inside_header() {
        for length in [0, 127, 128, 16_383, 16_384, TWO_MIB] {
            let bytes = packet(0x30, length);
            let header_length = bytes.len() - length;
            for split in 1..=header_length {
                let packets = read_in_chunks(&bytes, &[split, bytes.len()]);
                assert_eq!(packets.len(), 1, "length {length}, split at {split}");
                assert!(
                    packets[0].bytes == bytes,
                    "bytes differ for length {length}, split at {split}"
                );
            }
        }
    }

    #[test]
    fn reader_handles_small_reads() {
        for (length, chunk) in [(0, 1), (127, 1), (128, 1), (16_383, 7), (16_384, 3)] {
            let bytes = packet(0x30, length);
            let packets = read_in_chunks(&bytes, &[chunk]);
            assert_eq!(packets.len(), 1, "length {length}");
            assert!(
                packets[0].bytes == bytes,
                "bytes differ for length {length}"
            );
        }
        let bytes = packet(0x30, TWO_MIB);
        let packets = read_in_chunks(&bytes, &[4093, 1, 2, 65_536]);
        assert_eq!(packets.len(), 1);
        assert!(packets[0].bytes == bytes, "2 MiB packet differs");
    }

    #[test]
    fn reader_splits_packet_sequence() {
        let types = [0x10, 0x30, 0x40, 0x50, 0x82, 0xc0, 0x30, 0xe0];
        let lengths = [12, 0, 2, 2, 16_384, 0, 128, 0];
        let mut stream = Vec::new();
        let mut expected = Vec::new();
        for (first_byte, length) in types.into_iter().zip(lengths) {
            let bytes = packet(first_byte, length);
            stream.extend_from_slice(&bytes);
            expected.push(bytes);
        }
        for chunk_sizes in [&[stream.len()][..], &[1], &[3, 5, 7], &[2, 1000]] {
            let packets = read_in_chunks(&stream, chunk_sizes);
            let types_read: Vec<u8> = packets.iter().map(|p| p.header.packet_type).collect();
            assert_eq!(
                types_read,
                vec![1, 3, 4, 5, 8, 12, 3, 14],
                "chunks {chunk_sizes:?}"
            );
            for (packet, bytes) in packets.iter().zip(&expected) {
                assert!(
                    packet.bytes == *bytes,
                    "packet differs, chunks {chunk_sizes:?}"
                );
            }
        }
    }
}
