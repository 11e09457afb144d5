//! The decoder against synthetic JPEGs built from the documented layout.

use super::*;

/// One area: id, alarm code (type << 12 | direction << 8 | object) and bounding box.
struct Area(u16, u16, [u16; 4]);

fn block(algorithm: u16, detection: bool, areas: &[Area]) -> Vec<u8> {
    let mut bytes = Vec::new();
    bytes.extend(1_733_300_000u32.to_be_bytes());
    bytes.push(9); // UTC+9, no daylight saving
    bytes.push(0);
    bytes.extend(0u16.to_be_bytes());
    bytes.extend(algorithm.to_be_bytes());
    let result_info: u16 = if detection { 0 } else { 0x0002 };
    bytes.extend(result_info.to_be_bytes());
    bytes.extend(((areas.len() * AREA_BYTES) as u16).to_be_bytes());
    bytes.extend(((areas.len() as u16) << 10 | AREA_BYTES as u16).to_be_bytes());
    bytes.extend(1920u16.to_be_bytes());
    bytes.extend(1080u16.to_be_bytes());
    for Area(id, alarm, [x, y, w, h]) in areas {
        bytes.extend(id.to_be_bytes());
        bytes.extend(1u16.to_be_bytes());
        bytes.extend(alarm.to_be_bytes());
        bytes.extend([0, 0]);
        for value in [x, y, w, h] {
            bytes.extend(value.to_be_bytes());
        }
    }
    bytes
}

/// Wraps a block into `FFD8 FFFE <len> 002F <tlvlen> <block> FFD9`.
fn jpeg(block: &[u8], tlv_length: usize) -> Vec<u8> {
    let mut comment = Vec::new();
    comment.extend(TAG.to_be_bytes());
    comment.extend((tlv_length as u16).to_be_bytes());
    comment.extend(block);
    let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xFE];
    bytes.extend(((comment.len() + 2) as u16).to_be_bytes());
    bytes.extend(comment);
    bytes.extend([0xFF, 0xD9]);
    bytes
}

#[test]
fn two_areas_of_different_alarm_types() {
    let areas = [
        Area(1, 0x1001, [640, 300, 120, 360]),
        Area(2, 0x5903, [100, 200, 50, 60]),
    ];
    let block = block(ALGORITHM_ID, true, &areas);
    let result = decode_ai_vmd(&jpeg(&block, block.len()))
        .unwrap()
        .expect("a result");
    assert!(result.detection);
    assert_eq!(result.utc_clock, 1_733_300_000);
    assert_eq!(result.utc_offset_minutes, 9 * 60);
    assert_eq!((result.image_width, result.image_height), (1920, 1080));
    assert_eq!(result.areas.len(), 2);
    let intruder = &result.areas[0];
    assert_eq!(intruder.area_id, 1);
    assert_eq!(intruder.alarm_type, AlarmType::Intruder);
    assert_eq!(intruder.object, Some("person"));
    assert_eq!(intruder.direction, None);
    assert_eq!(
        intruder.bounding_box,
        BoundingBox {
            x: 640,
            y: 300,
            width: 120,
            height: 360
        }
    );
    let crossing = &result.areas[1];
    assert_eq!(crossing.alarm_type, AlarmType::CrossLine);
    assert_eq!(crossing.object, Some("bike"));
    assert_eq!(crossing.direction, Some("a-to-b"));
}

#[test]
fn no_detection_result() {
    let block = block(ALGORITHM_ID, false, &[]);
    let result = decode_ai_vmd(&jpeg(&block, block.len()))
        .unwrap()
        .expect("a result");
    assert!(!result.detection);
    assert!(result.areas.is_empty());
}

#[test]
fn truncated_block_is_rejected() {
    let full = block(ALGORITHM_ID, true, &[Area(1, 0x1001, [0, 0, 1, 1])]);
    let cut = &full[..full.len() - 4];
    let err = decode_ai_vmd(&jpeg(cut, cut.len())).expect_err("truncated area");
    assert_eq!(
        err,
        AiVmdError::Truncated {
            needed: 36,
            available: 32
        }
    );
    let err = decode_ai_vmd(&jpeg(cut, full.len())).expect_err("TLV longer than its data");
    assert!(err.to_string().contains("truncated"), "{err}");
}

#[test]
fn wrong_algorithm_id_is_rejected() {
    let block = block(0x0200, true, &[]);
    let err = decode_ai_vmd(&jpeg(&block, block.len())).expect_err("unknown algorithm");
    assert_eq!(err, AiVmdError::UnknownAlgorithm { found: 0x0200 });
    assert!(err.to_string().contains("0x0200"), "{err}");
}

#[test]
fn other_bytes_have_no_result() {
    assert_eq!(decode_ai_vmd(b"not a jpeg"), Ok(None));
    assert_eq!(decode_ai_vmd(&[0xFF, 0xD8, 0xFF, 0xD9]), Ok(None));
    let mut other_tag = jpeg(&block(ALGORITHM_ID, true, &[]), 20);
    other_tag[6] = 0x00;
    other_tag[7] = 0x30;
    assert_eq!(decode_ai_vmd(&other_tag), Ok(None));
}
