//! Progress bars on stderr for long work (pull, import, export); plain lines when stderr is
//! not a terminal, so logs and scripts see what happened without the bars' redraws.

use std::collections::HashMap;
use std::io::IsTerminal;

use condo_api::{ImagePhase, ImageProgress};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::output::human;

/// Whether bars are drawn (stderr is a terminal).
pub fn drawn() -> bool {
    std::io::stderr().is_terminal()
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

/// A bar of `total` bytes on stderr (a spinner with a byte count when the total is unknown).
pub fn bytes(label: &str, total: Option<u64>) -> ProgressBar {
    let pb = bar(label, total);
    pb.set_draw_target(ProgressDrawTarget::stderr());
    pb
}

/// A bar not drawn yet: one for a [`MultiProgress`], which draws it once added.
fn bar(label: &str, total: Option<u64>) -> ProgressBar {
    let (pb, template) = match total {
        Some(t) => (
            ProgressBar::with_draw_target(Some(t), ProgressDrawTarget::hidden()),
            "{msg:<14} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} {eta}",
        ),
        None => (
            ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden()),
            "{msg:<14} {spinner} {bytes} {binary_bytes_per_sec}",
        ),
    };
    pb.set_style(style(template));
    pb.set_message(label.to_string());
    pb
}

/// The short form of a digest (`sha256:0123…` → `0123456789ab`).
pub fn short(digest: &str) -> String {
    let hex = digest.split_once(':').map_or(digest, |(_, h)| h);
    hex.chars().take(12).collect()
}

/// The bars of one pull or import: one per blob in flight and one for the whole.
pub struct ImageBars {
    multi: MultiProgress,
    total: Option<ProgressBar>,
    blobs: HashMap<String, (ProgressBar, u64)>,
    done: u64,
}

impl Default for ImageBars {
    fn default() -> Self {
        ImageBars {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            total: None,
            blobs: HashMap::new(),
            done: 0,
        }
    }
}

impl ImageBars {
    /// Shows one progress event.
    pub fn update(&mut self, p: &ImageProgress) {
        let id = p.id.as_deref().map(short).unwrap_or_default();
        match p.phase {
            ImagePhase::Resolved => {
                if !drawn() {
                    eprintln!("manifest {id}: {} blobs, {}", p.current, human(p.total));
                }
                let pb = self.multi.add(bar("total", Some(p.total)));
                self.total = Some(pb);
            }
            ImagePhase::Download => {
                let key = p.id.clone().unwrap_or_default();
                let (pb, seen) = self.blobs.entry(key).or_insert_with(|| {
                    let pb = bar(&id, Some(p.total));
                    let pb = match &self.total {
                        Some(t) => self.multi.insert_before(t, pb),
                        None => self.multi.add(pb),
                    };
                    (pb, 0)
                });
                pb.set_position(p.current);
                self.done += p.current.saturating_sub(*seen);
                *seen = p.current;
                if let Some(t) = &self.total {
                    t.set_position(self.done);
                }
            }
            ImagePhase::Downloaded => {
                let what = match self.blobs.remove(p.id.as_deref().unwrap_or_default()) {
                    Some((pb, _)) => {
                        pb.finish_and_clear();
                        "downloaded"
                    }
                    None => "already present",
                };
                // Under bars, the bar going away says it.
                if !drawn() {
                    eprintln!("{id}: {what}");
                }
            }
            ImagePhase::Import => {
                let t = self
                    .total
                    .get_or_insert_with(|| self.multi.add(bar("importing", Some(p.total))));
                t.set_length(p.total);
                t.set_position(p.current);
            }
        }
    }

    /// Clears every bar.
    pub fn finish(&mut self) {
        for (_, (pb, _)) in self.blobs.drain() {
            pb.finish_and_clear();
        }
        if let Some(t) = self.total.take() {
            t.finish_and_clear();
        }
        let _ = self.multi.clear();
    }
}
