//! The AI-VMD result that i-PRO cameras embed in each JPEG, in a comment (COM) segment.
//!
//! Layout, big-endian, as i-PRO's sample parser for the WV-XAE200W reads it: a TLV with tag
//! `0x002F` inside the COM segment; a 20-byte header (UTC clock u32, time zone u8, time
//! zone minutes u8, frame time u16, algorithm id u16 = `0x0100`, result info u16 whose bit 1
//! set means no detection, result info length u16, area info u16 with the area count in
//! bits 15 to 10, image width u16, image height u16); then 16 bytes per area (area id u16,
//! detect area u16, alarm u16, two reserved bytes, then the bounding box as horizontal
//! start, vertical start, width and height, u16 each).
// NOTE: the TLV's tag and length are read as two big-endian u16 values, the way the
// synthetic fixtures write them. A capture from a real camera should confirm this.

use thiserror::Error;

/// Tag of the AI-VMD TLV inside a JPEG comment.
const TAG: u16 = 0x002F;
/// The only algorithm id this decoder reads.
const ALGORITHM_ID: u16 = 0x0100;
const HEADER_BYTES: usize = 20;
const AREA_BYTES: usize = 16;

/// The kind of alarm of one area.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlarmType {
    /// Someone entered the area.
    Intruder,
    /// Someone stayed in the area.
    Loitering,
    /// Movement in a set direction.
    Direction,
    /// An object was left or removed.
    Object,
    /// A line was crossed.
    CrossLine,
    /// An AI detection.
    Ai,
    /// A code this decoder does not know.
    Other(u8),
}

impl AlarmType {
    fn from_code(code: u8) -> AlarmType {
        match code {
            1 => AlarmType::Intruder,
            2 => AlarmType::Loitering,
            3 => AlarmType::Direction,
            4 => AlarmType::Object,
            5 => AlarmType::CrossLine,
            8 => AlarmType::Ai,
            other => AlarmType::Other(other),
        }
    }

    /// Returns a lower-case name, such as `cross-line`, or `other` for unknown codes.
    pub fn as_str(self) -> &'static str {
        match self {
            AlarmType::Intruder => "intruder",
            AlarmType::Loitering => "loitering",
            AlarmType::Direction => "direction",
            AlarmType::Object => "object",
            AlarmType::CrossLine => "cross-line",
            AlarmType::Ai => "ai",
            AlarmType::Other(_) => "other",
        }
    }
}

/// A rectangle in image coordinates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BoundingBox {
    /// Left edge.
    pub x: u16,
    /// Top edge.
    pub y: u16,
    /// Width.
    pub width: u16,
    /// Height.
    pub height: u16,
}

/// One detection area of a result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AiVmdArea {
    /// Area id, which video management software treats as the motion window.
    pub area_id: u16,
    /// The `detectArea` field as sent, not interpreted.
    pub detect_area: u16,
    /// Kind of alarm.
    pub alarm_type: AlarmType,
    /// Object class: `person`, `car`, `bike`, `unknown`, or `None` for other codes.
    pub object: Option<&'static str>,
    /// Direction: a compass direction or a line crossing such as `a-to-b`; `None` for 0
    /// and unknown codes.
    pub direction: Option<&'static str>,
    /// The object's position in the image.
    pub bounding_box: BoundingBox,
}

/// A decoded AI-VMD result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AiVmdResult {
    /// Camera time, seconds since 1970 in UTC.
    pub utc_clock: u32,
    /// Camera time zone offset from UTC in minutes, east positive.
    pub utc_offset_minutes: i16,
    /// Whether daylight saving time was in effect.
    pub daylight_saving: bool,
    /// The `frameTime` field as sent, not interpreted because its unit is not known.
    pub frame_time: u16,
    /// Whether anything was detected.
    pub detection: bool,
    /// Image width in pixels.
    pub image_width: u16,
    /// Image height in pixels.
    pub image_height: u16,
    /// Detection areas.
    pub areas: Vec<AiVmdArea>,
}

/// An AI-VMD block that cannot be decoded.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum AiVmdError {
    /// The block ends before the header or an area does.
    #[error("AI-VMD result is truncated: {needed} bytes needed, {available} available")]
    Truncated {
        /// Bytes the layout needs.
        needed: usize,
        /// Bytes present.
        available: usize,
    },
    /// The algorithm id is not `0x0100`.
    #[error("AI-VMD result has algorithm id {found:#06x}; only 0x0100 is known")]
    UnknownAlgorithm {
        /// The id found.
        found: u16,
    },
}

/// Finds the AI-VMD result in a JPEG's comment segments and decodes it. Returns `Ok(None)`
/// when the bytes are not a JPEG or no comment carries the tag.
///
/// # Errors
///
/// [`AiVmdError`] when a tagged block is truncated or has an unknown algorithm id.
pub fn decode_ai_vmd(jpeg: &[u8]) -> Result<Option<AiVmdResult>, AiVmdError> {
    if !jpeg.starts_with(&[0xFF, 0xD8]) {
        return Ok(None);
    }
    let mut position = 2;
    while position + 4 <= jpeg.len() {
        if jpeg[position] != 0xFF {
            return Ok(None);
        }
        let marker = jpeg[position + 1];
        // Start of scan: entropy-coded data follows, and no comment after it is read.
        if marker == 0xDA || marker == 0xD9 {
            return Ok(None);
        }
        let length = usize::from(u16::from_be_bytes([jpeg[position + 2], jpeg[position + 3]]));
        let start = position + 4;
        let end = (position + 2 + length).min(jpeg.len());
        if length < 2 || start > end {
            return Ok(None);
        }
        if marker == 0xFE
            && let Some(block) = find_tag(&jpeg[start..end])?
        {
            return decode_block(block).map(Some);
        }
        position = position + 2 + length;
    }
    Ok(None)
}

/// Returns the value of the TLV with [`TAG`] in a comment, if there is one.
fn find_tag(comment: &[u8]) -> Result<Option<&[u8]>, AiVmdError> {
    let mut rest = comment;
    while rest.len() >= 4 {
        let tag = u16::from_be_bytes([rest[0], rest[1]]);
        let length = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
        let value = &rest[4..];
        if tag == TAG {
            if value.len() < length {
                return Err(AiVmdError::Truncated {
                    needed: length,
                    available: value.len(),
                });
            }
            return Ok(Some(&value[..length]));
        }
        if value.len() < length {
            return Ok(None);
        }
        rest = &value[length..];
    }
    Ok(None)
}

fn decode_block(block: &[u8]) -> Result<AiVmdResult, AiVmdError> {
    if block.len() < HEADER_BYTES {
        return Err(AiVmdError::Truncated {
            needed: HEADER_BYTES,
            available: block.len(),
        });
    }
    let u16_at = |offset: usize| u16::from_be_bytes([block[offset], block[offset + 1]]);
    let algorithm = u16_at(8);
    if algorithm != ALGORITHM_ID {
        return Err(AiVmdError::UnknownAlgorithm { found: algorithm });
    }
    let time_zone = block[4];
    let hours = i16::from(time_zone & 0x1F);
    let minutes = i16::from(block[5]);
    let sign = if time_zone & 0x40 != 0 { -1 } else { 1 };
    let area_count = usize::from(u16_at(14) >> 10);
    let needed = HEADER_BYTES + area_count * AREA_BYTES;
    if block.len() < needed {
        return Err(AiVmdError::Truncated {
            needed,
            available: block.len(),
        });
    }
    let areas = (0..area_count)
        .map(|index| decode_area(&block[HEADER_BYTES + index * AREA_BYTES..]))
        .collect();
    Ok(AiVmdResult {
        utc_clock: u32::from_be_bytes([block[0], block[1], block[2], block[3]]),
        utc_offset_minutes: sign * (hours * 60 + minutes),
        daylight_saving: time_zone & 0x20 != 0,
        frame_time: u16_at(6),
        detection: u16_at(10) & 0x0002 == 0,
        image_width: u16_at(16),
        image_height: u16_at(18),
        areas,
    })
}

fn decode_area(area: &[u8]) -> AiVmdArea {
    let u16_at = |offset: usize| u16::from_be_bytes([area[offset], area[offset + 1]]);
    let alarm = u16_at(4);
    let [high, object] = alarm.to_be_bytes();
    AiVmdArea {
        area_id: u16_at(0),
        detect_area: u16_at(2),
        alarm_type: AlarmType::from_code(high >> 4),
        object: match object {
            1 => Some("person"),
            2 => Some("car"),
            3 => Some("bike"),
            4 => Some("unknown"),
            _ => None,
        },
        direction: match high & 0x0F {
            1 => Some("up"),
            2 => Some("up-right"),
            3 => Some("right"),
            4 => Some("down-right"),
            5 => Some("down"),
            6 => Some("down-left"),
            7 => Some("left"),
            8 => Some("up-left"),
            9 => Some("a-to-b"),
            10 => Some("b-to-a"),
            11 => Some("both"),
            _ => None,
        },
        bounding_box: BoundingBox {
            x: u16_at(8),
            y: u16_at(10),
            width: u16_at(12),
            height: u16_at(14),
        },
    }
}

#[cfg(test)]
mod tests;
