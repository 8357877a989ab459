//! Numbering across origins: where this stream's MSNs, discontinuities and
//! init generations stand, and renumbering past another origin's when this
//! hub takes the stream over in a cluster (`livecdn_cluster::numbering`).
//!
//! Renumbering keeps the window, moved up to MSNs the other origin cannot
//! have used: the segment in progress goes on under its new number (no
//! wait for the next keyframe) and players joining now find a full window.
//! A rendition's segments that would land below the floor (one lagging
//! behind the lead) are dropped. Tracks made later (a rung whose encoder starts, a stream whose media has
//! not arrived yet) start at the same floors.

use super::cut::TrackState;
use super::{Lead, Packager};
use livecdn_cluster::{Position, Rebase};

impl TrackState {
    /// A new track at `floor`'s numbering.
    pub(super) fn floored(mut self, floor: Option<Rebase>) -> Self {
        if let Some(f) = floor {
            self.rebase(0, f.msn, f.discontinuities, f.init_gen);
        }
        self
    }
}

impl Packager {
    fn states_mut(&mut self) -> impl Iterator<Item = &mut TrackState> {
        self.video
            .iter_mut()
            .chain(self.audio.iter_mut())
            .chain(self.opus.iter_mut())
            .chain(self.rungs.iter_mut().map(|r| &mut r.state))
    }

    /// Where the numbering stands, over every rendition.
    pub fn position(&self) -> Position {
        let states = self
            .video
            .iter()
            .chain(self.audio.iter())
            .chain(self.opus.iter())
            .chain(self.rungs.iter().map(|r| &r.state));
        let floor = self.floor.map_or(Position::default(), |f| Position {
            next_msn: f.msn,
            discontinuities: f.discontinuities,
            init_gen: f.init_gen,
        });
        states.fold(floor, |p, s| Position {
            next_msn: p.next_msn.max(s.track.next_msn()),
            discontinuities: p.discontinuities.max(s.track.discontinuities()),
            init_gen: p.init_gen.max(s.track.init_gen()),
        })
    }

    /// Renumbers every rendition so that the lead's window starts at
    /// `r.msn` (see [`super::Track::rebase`]): the whole window stays
    /// listed, so a player that joins now still finds its hold-back
    /// distance, and one coming from the other origin finds its playhead by
    /// PROGRAM-DATE-TIME. Never moves numbers down: a hub already past
    /// `r.msn` keeps its numbers and drops what lies below it.
    pub fn rebase(&mut self, r: Rebase) -> Position {
        let lead = match self.lead {
            Lead::Video => self.video.as_ref(),
            Lead::Audio => self.audio.as_ref(),
            Lead::Undecided => None,
        };
        let current = lead.map(|s| {
            s.track
                .segments()
                .front()
                .map_or(s.track.next_msn(), |first| first.msn)
        });
        let offset = current.map_or(0, |m| r.msn.saturating_sub(m));
        for s in self.states_mut() {
            s.rebase(offset, r.msn, r.discontinuities, r.init_gen);
        }
        let floor = self.floor.get_or_insert(r);
        floor.msn = floor.msn.max(r.msn);
        floor.discontinuities = floor.discontinuities.max(r.discontinuities);
        floor.init_gen = floor.init_gen.max(r.init_gen);
        self.position()
    }
}
