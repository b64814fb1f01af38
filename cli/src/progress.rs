//! Progress on stderr for slow requests, only when stderr is a terminal, and only
//! once a request has taken a moment (fast ones never flash a bar).

use std::io::{IsTerminal, Read};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How long a request runs before its progress is drawn.
const REVEAL_AFTER: Duration = Duration::from_millis(300);

/// A progress indicator: a spinner while waiting, a byte bar while reading a body.
/// Inert when stderr is not a terminal.
#[derive(Debug)]
pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// A spinner with `message`, e.g. while the request is sent and a cacheable body
    /// is buffered by the cache.
    pub fn spinner(message: String) -> Self {
        Progress::start(None, "{spinner} {msg} {elapsed}", message)
    }

    /// A byte bar for a body of `length` bytes (a byte counter when unknown).
    pub fn body(length: Option<u64>) -> Self {
        let template = match length {
            Some(_) => "{wide_bar} {bytes}/{total_bytes} {bytes_per_sec} {eta}",
            None => "{spinner} {bytes} {bytes_per_sec} {elapsed}",
        };
        Progress::start(length, template, String::new())
    }

    fn start(length: Option<u64>, template: &str, message: String) -> Self {
        if !std::io::stderr().is_terminal() {
            return Progress { bar: None };
        }
        let bar = ProgressBar::with_draw_target(length, ProgressDrawTarget::hidden()).with_message(message);
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style);
        }
        bar.enable_steady_tick(Duration::from_millis(120));
        let reveal = bar.clone();
        // Drawn only if still running after a moment; a detached thread that only sleeps.
        let _ = std::thread::Builder::new().name("httpcache-progress".into()).spawn(move || {
            std::thread::sleep(REVEAL_AFTER);
            if !reveal.is_finished() {
                reveal.set_draw_target(ProgressDrawTarget::stderr());
            }
        });
        Progress { bar: Some(bar) }
    }

    /// Counts the bytes read through `reader`.
    pub fn wrap<R: Read + 'static>(&self, reader: R) -> Box<dyn Read> {
        match &self.bar {
            Some(bar) => Box::new(bar.wrap_read(reader)),
            None => Box::new(reader),
        }
    }

    /// Removes the indicator.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}
