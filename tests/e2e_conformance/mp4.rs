//! Just enough ISO BMFF reading to time CMAF media independently of the
//! server: the track timescale (`mdhd`), the default sample duration
//! (`trex`), and each fragment's decode time (`tfdt`) and sample durations
//! (`trun`, else `tfhd`, else `trex`). Every read is bounds-checked.

/// One `moof`: where it starts on the decode timeline and how long its
/// samples say they last, in timescale ticks.
#[derive(Debug, Clone, Copy)]
pub struct Fragment {
    pub decode_time: u64,
    pub duration: u64,
}

fn be(data: &[u8], at: usize, len: usize) -> Result<u64, String> {
    let bytes = data
        .get(at..at + len)
        .ok_or(format!("box truncated at byte {at}"))?;
    Ok(bytes.iter().fold(0, |n, b| (n << 8) | u64::from(*b)))
}

/// Boxes as (type, payload).
type Boxes<'a> = Vec<([u8; 4], &'a [u8])>;

/// The boxes directly inside `data`.
fn boxes(data: &[u8]) -> Result<Boxes<'_>, String> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < data.len() {
        let size = be(data, at, 4)?;
        let kind: [u8; 4] = data
            .get(at + 4..at + 8)
            .and_then(|k| k.try_into().ok())
            .ok_or("box header truncated")?;
        let (header, size) = match size {
            0 => (8, (data.len() - at) as u64),
            1 => (16, be(data, at + 8, 8)?),
            n => (8, n),
        };
        let end = at
            .checked_add(usize::try_from(size).map_err(|_| "box too large")?)
            .filter(|&e| e <= data.len() && size >= header as u64)
            .ok_or(format!(
                "box {} overruns its parent",
                String::from_utf8_lossy(&kind)
            ))?;
        out.push((kind, &data[at + header..end]));
        at = end;
    }
    Ok(out)
}

/// The payload of the first box along `path`.
fn find<'a>(data: &'a [u8], path: &[&[u8; 4]]) -> Result<Option<&'a [u8]>, String> {
    let mut here = data;
    for kind in path {
        match boxes(here)?.into_iter().find(|(k, _)| k == *kind) {
            Some((_, payload)) => here = payload,
            None => return Ok(None),
        }
    }
    Ok(Some(here))
}

/// `mdhd` timescale of the (single) track in an init segment.
pub fn timescale(init: &[u8]) -> Result<u64, String> {
    let mdhd = find(init, &[b"moov", b"trak", b"mdia", b"mdhd"])?.ok_or("no mdhd")?;
    match be(mdhd, 0, 1)? {
        1 => be(mdhd, 20, 4),
        _ => be(mdhd, 12, 4),
    }
}

/// `trex` default sample duration, 0 when absent.
pub fn default_duration(init: &[u8]) -> Result<u64, String> {
    match find(init, &[b"moov", b"mvex", b"trex"])? {
        Some(trex) => be(trex, 12, 4),
        None => Ok(0),
    }
}

/// Every `moof` of a segment or part, in order.
pub fn fragments(media: &[u8], trex_duration: u64) -> Result<Vec<Fragment>, String> {
    let mut out = Vec::new();
    for (kind, moof) in boxes(media)? {
        if &kind != b"moof" {
            continue;
        }
        let traf = find(moof, &[b"traf"])?.ok_or("moof without traf")?;
        let tfdt = find(traf, &[b"tfdt"])?.ok_or("traf without tfdt")?;
        let decode_time = match be(tfdt, 0, 1)? {
            1 => be(tfdt, 4, 8)?,
            _ => be(tfdt, 4, 4)?,
        };
        let tfhd = find(traf, &[b"tfhd"])?.ok_or("traf without tfhd")?;
        let flags = be(tfhd, 1, 3)?;
        let mut at = 8 + if flags & 0x1 != 0 { 8 } else { 0 };
        at += if flags & 0x2 != 0 { 4 } else { 0 };
        let default = if flags & 0x8 != 0 {
            be(tfhd, at, 4)?
        } else {
            trex_duration
        };
        let mut duration = 0;
        for (kind, trun) in boxes(traf)? {
            if &kind == b"trun" {
                duration += trun_duration(trun, default)?;
            }
        }
        out.push(Fragment {
            decode_time,
            duration,
        });
    }
    Ok(out)
}

/// Sum of a `trun`'s sample durations.
fn trun_duration(trun: &[u8], default: u64) -> Result<u64, String> {
    let flags = be(trun, 1, 3)?;
    let count = be(trun, 4, 4)?;
    if flags & 0x100 == 0 {
        return Ok(count * default);
    }
    let mut at = 8;
    at += if flags & 0x1 != 0 { 4 } else { 0 };
    at += if flags & 0x4 != 0 { 4 } else { 0 };
    let per_sample = [0x100, 0x200, 0x400, 0x800]
        .iter()
        .filter(|f| flags & **f != 0)
        .count()
        * 4;
    let mut sum = 0;
    for i in 0..count as usize {
        sum += be(trun, at + i * per_sample, 4)?;
    }
    Ok(sum)
}
