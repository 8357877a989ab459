//! The muxer's output checked by an independent parser (`mp4-atom`), so a
//! mistake in our writer cannot be mirrored by a matching mistake in a reader
//! we wrote ourselves. Sizes are checked implicitly: `mp4-atom` rejects a box
//! whose body is shorter or longer than its fields.

use bytes::Bytes;
use mp4_atom::{
    Any, Codec, Decode, DrefEntry, Ftyp, Header, Mdat, Moof, Moov, StszSamples, TrunEntry,
};

use super::*;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A real 640x360 High-profile AVCDecoderConfigurationRecord from x264,
/// including the High-profile extension (chroma format, bit depths).
#[rustfmt::skip]
const AVCC: &[u8] = &[
    0x01, 0x64, 0x00, 0x1E, 0xFF, 0xE1, 0x00, 0x1A, 0x67, 0x64, 0x00, 0x1E, 0xAC, 0xD9,
    0x40, 0xA0, 0x2F, 0xF9, 0x70, 0x11, 0x00, 0x00, 0x03, 0x00, 0x01, 0x00, 0x00, 0x03,
    0x00, 0x3C, 0x0F, 0x16, 0x2D, 0x96, 0x01, 0x00, 0x06, 0x68, 0xEB, 0xE3, 0xCB, 0x22,
    0xC0, 0xFD, 0xF8, 0xF8, 0x00,
];
/// AAC-LC, 48 kHz, stereo.
const ASC: &[u8] = &[0x11, 0x90];

fn video_init() -> TrackInit {
    TrackInit::Video(VideoInit {
        timescale: 90_000,
        width: 640,
        height: 360,
        avcc: Bytes::from_static(AVCC),
    })
}

fn audio_init() -> TrackInit {
    TrackInit::Audio(AudioInit {
        timescale: 48_000,
        sample_rate: 48_000,
        channels: 2,
        asc: Bytes::from_static(ASC),
    })
}

/// Decodes `ftyp` then `moov` and insists nothing follows.
fn parse_init(bytes: &[u8]) -> Result<(Ftyp, Moov), mp4_atom::Error> {
    let mut buf = bytes;
    let ftyp = Ftyp::decode(&mut buf)?;
    let moov = Moov::decode(&mut buf)?;
    assert!(buf.is_empty(), "{} trailing bytes after moov", buf.len());
    Ok((ftyp, moov))
}

#[test]
fn video_init_segment_parses_with_expected_fields() -> TestResult {
    let bytes = init_segment(&video_init());
    let (ftyp, moov) = parse_init(&bytes)?;

    assert_eq!(ftyp.major_brand, b"iso6".into());
    assert!(ftyp.compatible_brands.contains(&b"cmfc".into()));
    assert!(ftyp.compatible_brands.contains(&b"iso6".into()));

    assert_eq!(moov.mvhd.timescale, 90_000);
    assert_eq!(moov.mvhd.duration, 0);
    assert_eq!(moov.mvhd.next_track_id, 2);
    assert_eq!(moov.trak.len(), 1);

    let trak = &moov.trak[0];
    assert_eq!(trak.tkhd.track_id, TRACK_ID);
    assert!(trak.tkhd.enabled && trak.tkhd.in_movie);
    assert_eq!(trak.tkhd.width.integer(), 640);
    assert_eq!(trak.tkhd.height.integer(), 360);
    assert_eq!(trak.tkhd.volume.integer(), 0);

    assert_eq!(trak.mdia.mdhd.timescale, 90_000);
    assert_eq!(trak.mdia.mdhd.language, "und");
    assert_eq!(trak.mdia.hdlr.handler, b"vide".into());

    let minf = &trak.mdia.minf;
    assert!(minf.vmhd.is_some());
    assert!(minf.smhd.is_none());
    assert_eq!(minf.dinf.dref.entries.len(), 1);
    assert!(matches!(&minf.dinf.dref.entries[0], DrefEntry::Url(url) if url.location.is_empty()));

    let stbl = &minf.stbl;
    assert!(stbl.stts.entries.is_empty());
    assert!(stbl.stsc.entries.is_empty());
    assert_eq!(stbl.stsz.samples, StszSamples::Different { sizes: vec![] });
    assert_eq!(stbl.stco.as_ref().map(|s| s.entries.len()), Some(0));
    assert_eq!(stbl.stsd.codecs.len(), 1);
    let Codec::Avc1(avc1) = &stbl.stsd.codecs[0] else {
        panic!("expected avc1, got {:?}", stbl.stsd.codecs[0]);
    };
    assert_eq!(avc1.visual.data_reference_index, 1);
    assert_eq!((avc1.visual.width, avc1.visual.height), (640, 360));
    assert_eq!(avc1.visual.horizresolution.integer(), 72);
    assert_eq!(avc1.visual.vertresolution.integer(), 72);
    assert_eq!(avc1.visual.frame_count, 1);
    assert_eq!(avc1.visual.depth, 0x18);
    // The decoded avcC equals the input record decoded on its own...
    let mut boxed = vec![0, 0, 0, 8 + AVCC.len() as u8, b'a', b'v', b'c', b'C'];
    boxed.extend_from_slice(AVCC);
    assert_eq!(avc1.avcc, mp4_atom::Avcc::decode(&mut boxed.as_slice())?);
    assert_eq!(avc1.avcc.avc_profile_indication, 0x64);
    assert_eq!(avc1.avcc.length_size, 4);
    assert_eq!(avc1.avcc.sequence_parameter_sets.len(), 1);
    assert!(avc1.avcc.ext.is_some());
    // ...and the record was copied verbatim, not re-encoded.
    assert!(bytes.windows(boxed.len()).any(|w| w == boxed.as_slice()));

    let mvex = moov.mvex.as_ref().ok_or("mvex missing")?;
    assert_eq!(mvex.trex.len(), 1);
    assert_eq!(mvex.trex[0].track_id, TRACK_ID);
    assert_eq!(mvex.trex[0].default_sample_description_index, 1);
    Ok(())
}

#[test]
fn audio_init_segment_parses_with_expected_fields() -> TestResult {
    let bytes = init_segment(&audio_init());
    let (_, moov) = parse_init(&bytes)?;

    assert_eq!(moov.mvhd.timescale, 48_000);
    let trak = &moov.trak[0];
    assert_eq!(trak.tkhd.track_id, TRACK_ID);
    assert_eq!(trak.tkhd.volume.integer(), 1);
    assert_eq!(trak.tkhd.width.integer(), 0);
    assert_eq!(trak.mdia.mdhd.timescale, 48_000);
    assert_eq!(trak.mdia.hdlr.handler, b"soun".into());
    assert!(trak.mdia.minf.smhd.is_some());
    assert!(trak.mdia.minf.vmhd.is_none());

    let stsd = &trak.mdia.minf.stbl.stsd;
    assert_eq!(stsd.codecs.len(), 1);
    let Codec::Mp4a(mp4a) = &stsd.codecs[0] else {
        panic!("expected mp4a, got {:?}", stsd.codecs[0]);
    };
    assert_eq!(mp4a.audio.data_reference_index, 1);
    assert_eq!(mp4a.audio.channel_count, 2);
    assert_eq!(mp4a.audio.sample_size, 16);
    assert_eq!(mp4a.audio.sample_rate.integer(), 48_000);

    let dec = &mp4a.esds.es_desc.dec_config;
    assert_eq!(dec.object_type_indication, 0x40);
    assert_eq!(dec.stream_type, 0x05);
    assert_eq!(dec.up_stream, 0);
    let dsi = dec
        .dec_specific
        .as_ref()
        .ok_or("DecoderSpecificInfo missing")?;
    assert_eq!(dsi.raw, ASC);
    assert_eq!((dsi.profile, dsi.freq_index, dsi.chan_conf), (2, 3, 2));
    Ok(())
}

#[test]
fn init_segment_is_deterministic() {
    assert_eq!(init_segment(&video_init()), init_segment(&video_init()));
    assert_ne!(init_segment(&video_init()), init_segment(&audio_init()));
}

fn samples() -> Vec<Sample> {
    vec![
        Sample {
            duration: 3000,
            size: 5,
            cts_offset: 6000,
            sync: true,
        },
        Sample {
            duration: 3000,
            size: 3,
            cts_offset: -3000,
            sync: false,
        },
        Sample {
            duration: 2999,
            size: 1,
            cts_offset: 0,
            sync: false,
        },
    ]
}

fn payloads() -> Vec<Bytes> {
    vec![
        Bytes::from_static(b"IDR!!"),
        Bytes::from_static(b"P-1"),
        Bytes::from_static(b"B"),
    ]
}

#[test]
fn fragment_header_parses_and_points_at_the_payload() -> TestResult {
    let samples = samples();
    let base = u64::from(u32::MAX) + 12_345; // needs tfdt v1
    let header = fragment_header(42, base, &samples);

    let mut buf = &header[..];
    let moof = Moof::decode(&mut buf)?;
    let mdat = Header::decode(&mut buf)?;
    assert!(
        buf.is_empty(),
        "the header must end right after the mdat header"
    );

    assert_eq!(moof.mfhd.sequence_number, 42);
    assert_eq!(moof.traf.len(), 1);
    let traf = &moof.traf[0];
    assert_eq!(traf.tfhd.track_id, TRACK_ID);
    assert!(traf.tfhd.default_base_is_moof);
    assert_eq!(traf.tfhd.base_data_offset, None);
    assert_eq!(
        traf.tfdt.as_ref().map(|t| t.base_media_decode_time),
        Some(base)
    );
    assert_eq!(traf.trun.len(), 1);
    let trun = &traf.trun[0];
    assert_eq!(trun.data_offset, Some(i32::try_from(header.len())?));
    let entries: Vec<TrunEntry> = trun.samples.iter().collect();
    let expected: Vec<TrunEntry> = [
        (3000, 5, 0x0200_0000, 6000),
        (3000, 3, 0x0101_0000, -3000),
        (2999, 1, 0x0101_0000, 0),
    ]
    .into_iter()
    .map(|(d, s, f, c)| TrunEntry {
        duration: Some(d),
        size: Some(s),
        flags: Some(f),
        cts: Some(c),
    })
    .collect();
    assert_eq!(entries, expected);

    assert_eq!(mdat.kind, b"mdat".into());
    assert_eq!(mdat.size, Some(5 + 3 + 1));
    Ok(())
}

#[test]
fn chunk_concatenates_to_a_valid_moof_mdat() -> TestResult {
    let payloads = payloads();
    let parts = chunk(7, 0, &samples(), &payloads)?;
    assert_eq!(parts.len(), 1 + payloads.len());
    for (part, payload) in parts[1..].iter().zip(&payloads) {
        assert_eq!(part.as_ptr(), payload.as_ptr(), "payload was copied");
    }

    let file: Vec<u8> = parts.iter().flat_map(|b| b.iter().copied()).collect();
    let mut buf = file.as_slice();
    let moof = Moof::decode(&mut buf)?;
    let mdat = Mdat::decode(&mut buf)?;
    assert!(buf.is_empty());
    assert_eq!(mdat.data, b"IDR!!P-1B");

    // data_offset is relative to the moof start (default-base-is-moof).
    let offset = usize::try_from(moof.traf[0].trun[0].data_offset.ok_or("no data_offset")?)?;
    assert_eq!(&file[offset..offset + 5], b"IDR!!");
    Ok(())
}

#[test]
fn chunk_rejects_mismatched_payloads() {
    let samples = samples();
    let mut payloads = payloads();
    assert_eq!(
        chunk(1, 0, &samples, &payloads[..2]),
        Err(FragmentError::CountMismatch {
            samples: 3,
            payloads: 2
        })
    );
    payloads[1] = Bytes::from_static(b"P-1!");
    assert_eq!(
        chunk(1, 0, &samples, &payloads),
        Err(FragmentError::SizeMismatch {
            index: 1,
            declared: 3,
            actual: 4
        })
    );
}

#[test]
fn empty_fragment_is_well_formed() -> TestResult {
    let header = fragment_header(1, 0, &[]);
    let mut buf = &header[..];
    let moof = Moof::decode(&mut buf)?;
    assert!(moof.traf[0].trun[0].samples.is_empty());
    assert_eq!(Header::decode(&mut buf)?.size, Some(0));
    assert!(buf.is_empty());
    Ok(())
}

#[test]
fn payload_over_4_gib_uses_a_largesize_mdat() -> TestResult {
    let big = Sample {
        duration: 1,
        size: u32::MAX,
        cts_offset: 0,
        sync: true,
    };
    let header = fragment_header(1, 0, &[big, big]);
    let mut buf = &header[..];
    let moof = Moof::decode(&mut buf)?;
    let mdat = Header::decode(&mut buf)?;
    assert!(buf.is_empty());
    assert_eq!(mdat.kind, b"mdat".into());
    assert_eq!(mdat.size, Some(2 * u32::MAX as usize));
    assert_eq!(
        moof.traf[0].trun[0].data_offset,
        Some(i32::try_from(header.len())?)
    );
    assert_eq!(
        &header[header.len() - 16..header.len() - 8],
        &[0, 0, 0, 1, b'm', b'd', b'a', b't']
    );
    Ok(())
}

#[test]
fn output_is_a_sequence_of_known_top_level_boxes() -> TestResult {
    // A generic walk: nothing mp4-atom does not recognise at the top level.
    let mut file = init_segment(&video_init()).to_vec();
    for part in chunk(1, 0, &samples(), &payloads())? {
        file.extend_from_slice(&part);
    }
    let mut buf = file.as_slice();
    let mut kinds = Vec::new();
    while !buf.is_empty() {
        let any = Any::decode(&mut buf)?;
        assert!(
            !matches!(any, Any::Unknown(..)),
            "unknown box {:?}",
            any.kind()
        );
        kinds.push(any.kind());
    }
    assert_eq!(
        kinds,
        [
            b"ftyp".into(),
            b"moov".into(),
            b"moof".into(),
            b"mdat".into()
        ]
    );
    Ok(())
}
