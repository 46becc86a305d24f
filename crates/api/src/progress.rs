//! The progress bar of long commands.

/// A progress bar on a terminal; silent when stderr is not one, but its messages
/// still go to stderr (unless `--quiet`).
pub struct Bar(indicatif::ProgressBar, bool);

impl Bar {
    /// A bar on stderr (hidden and silent when `quiet`).
    pub fn new(quiet: bool) -> Bar {
        let pb = if quiet {
            indicatif::ProgressBar::hidden()
        } else {
            indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr())
        };
        pb.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} images  {per_sec}  ETA {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        Bar(pb, quiet)
    }

    /// Removes the bar from the terminal.
    pub fn finish(&self) {
        self.0.finish_and_clear();
    }
}

impl headstart_extract::Progress for Bar {
    fn start(&self, total: u64) {
        self.0.set_length(total);
    }
    fn advance(&self, n: u64) {
        self.0.inc(n);
    }
    fn message(&self, msg: &str) {
        if self.1 {
            return;
        }
        let msg = headstart_files::escape(msg);
        if self.0.is_hidden() {
            eprintln!("headstart: {msg}");
        } else {
            self.0.println(msg);
        }
    }
}
