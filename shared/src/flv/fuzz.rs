//! Fuzz bodies for the FLV parsers (STYLE.md rule 4). Each must return
//! normally on any input; a panic is a bug in the parser, never bad input.

use bytes::Bytes;

use super::{
    audio_frame, parse_audio_tag, parse_video_tag, video_frame, FlvReader, FlvStreamReader, TagType,
};

/// Parses `data` as a video tag body and maps it to a frame.
pub fn fuzz_video_tag(data: &[u8]) {
    if let Ok(tag) = parse_video_tag(Bytes::copy_from_slice(data)) {
        let _ = video_frame(0, tag);
    }
}

/// Parses `data` as an audio tag body and maps it to a frame.
pub fn fuzz_audio_tag(data: &[u8]) {
    if let Ok(tag) = parse_audio_tag(Bytes::copy_from_slice(data)) {
        let _ = audio_frame(0, tag);
    }
}

/// Reads `data` as an FLV file and parses every audio/video tag in it. The
/// loop is bounded by the input: each tag consumes at least 11 bytes.
pub fn fuzz_flv_file(data: &[u8]) {
    let Ok(mut reader) = FlvReader::new(Bytes::copy_from_slice(data)) else {
        return;
    };
    while let Ok(Some(tag)) = reader.next_tag() {
        match tag.tag_type {
            TagType::Video => fuzz_video_tag(&tag.body),
            TagType::Audio => fuzz_audio_tag(&tag.body),
            TagType::Script | TagType::Other(_) => {}
        }
    }
}

/// Feeds `data` to the incremental reader in pieces whose sizes come from
/// the input itself, and parses every tag that comes out. Bounded by the
/// input: each piece consumes at least one byte.
pub fn fuzz_flv_stream(data: &[u8]) {
    let Some((&step, rest)) = data.split_first() else {
        return;
    };
    let mut reader = FlvStreamReader::new(64 * 1024);
    for piece in rest.chunks(usize::from(step.max(1))) {
        reader.push(piece);
        loop {
            match reader.next_tag() {
                Ok(Some(tag)) => match tag.tag_type {
                    TagType::Video => fuzz_video_tag(&tag.body),
                    TagType::Audio => fuzz_audio_tag(&tag.body),
                    TagType::Script | TagType::Other(_) => {}
                },
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;
    use crate::bytes_reader::fuzz_input::exercise;
    use crate::flv::{write_header, write_tag};

    const VIDEO_SEEDS: &[&[u8]] = &[
        &[0x17, 0x00, 0, 0, 0, 0x01, 0x64, 0x00, 0x1f, 0xff, 0xe1],
        &[0x17, 0x01, 0x00, 0x00, 0x43, 0, 0, 0, 1, 0x65],
        &[0x27, 0x01, 0xff, 0xff, 0xdf, 0xaa],
        &[0x17, 0x02, 0, 0, 0],
        &[0x90, b'h', b'v', b'c', b'1', 1, 2, 3],
        &[0x57, 0x00],
    ];

    const AUDIO_SEEDS: &[&[u8]] = &[
        &[0xaf, 0x00, 0x12, 0x08, 0x56, 0xe5, 0x00],
        &[0xaf, 0x01, 0xde, 0x02],
        &[0x2f, 0xff],
        &[0x90, b'O', b'p', b'u', b's'],
    ];

    #[test]
    fn fuzz_video_tag_survives_seeds_and_mutations() {
        exercise(VIDEO_SEEDS, 4000, fuzz_video_tag);
    }

    #[test]
    fn fuzz_audio_tag_survives_seeds_and_mutations() {
        exercise(AUDIO_SEEDS, 4000, fuzz_audio_tag);
    }

    #[test]
    fn fuzz_flv_file_survives_seeds_and_mutations() {
        let mut file = write_header(true, true).to_vec();
        for body in VIDEO_SEEDS {
            file.extend_from_slice(&write_tag(TagType::Video, 40, body).unwrap());
        }
        for body in AUDIO_SEEDS {
            file.extend_from_slice(&write_tag(TagType::Audio, 23, body).unwrap());
        }
        file.extend_from_slice(&write_tag(TagType::Script, 0, b"\x02\x00\x01x").unwrap());
        exercise(
            &[&file, b"FLV\x01\x05\0\0\0\x09\0\0\0\0"],
            3000,
            fuzz_flv_file,
        );
        let mut stepped = vec![7u8];
        stepped.extend_from_slice(&file);
        exercise(&[&stepped], 3000, fuzz_flv_stream);
    }
}
