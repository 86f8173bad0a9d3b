//! Interactive terminal UI (ratatui + crossterm).
//!
//! The capture runs on its own thread and feeds a [`state::TuiSink`]; this thread only
//! copies from the shared state (under a short lock, see [`app::App::refresh`]), draws
//! at a bounded frame rate and handles keys. The capture never waits on drawing.

pub mod app;
pub mod rows;
pub mod state;
pub mod ui;

use crate::filter;
use app::App;
use crossterm::event::{self, Event, KeyEventKind};
use state::{SharedState, lock};
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Time between frames: at most 20 per second.
const FRAME: Duration = Duration::from_millis(50);
/// Data is copied from the shared state at most this often unless a key asks for it.
const REFRESH: Duration = Duration::from_millis(200);

/// Runs the UI on the calling thread until the user quits or `stop` is raised (a
/// signal), then restores the terminal (also restored on panic, by ratatui's hook)
/// and raises `stop` for the capture.
pub fn run(shared: SharedState, filter: filter::Filter, stop: &AtomicBool) -> io::Result<()> {
    let mut terminal = ratatui::try_init()?;
    let result = event_loop(&mut terminal, &shared, filter, stop);
    ratatui::restore();
    stop.store(true, Ordering::Relaxed);
    result
}

fn event_loop(
    terminal: &mut ratatui::DefaultTerminal,
    shared: &SharedState,
    filter: filter::Filter,
    stop: &AtomicBool,
) -> io::Result<()> {
    let theme = ui::Theme::from_env();
    let mut app = App::new(filter);
    let mut refreshed: Option<Instant> = None;
    let mut keyed = false;
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        let start = Instant::now();
        app.resize(terminal.size()?.height);
        if keyed || refreshed.is_none_or(|t| start.duration_since(t) >= REFRESH) {
            let st = lock(shared);
            if st.crashed {
                return Err(io::Error::other("the capture thread panicked"));
            }
            app.refresh(&st, start);
            refreshed = Some(start);
        }
        terminal.draw(|f| ui::draw(f, &app, theme))?;
        keyed = false;
        // Keys are handled as they come; the next frame waits for the deadline.
        let deadline = start + FRAME;
        while event::poll(deadline.saturating_duration_since(Instant::now()))? {
            if let Event::Key(k) = event::read()?
                && k.kind != KeyEventKind::Release
            {
                app.on_key(k);
                keyed = true;
                if app.quit {
                    return Ok(());
                }
            }
        }
    }
}
