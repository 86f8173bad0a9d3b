//! Interactive terminal UI (ratatui + crossterm).
//!
//! The capture runs on its own thread and feeds a [`state::TuiSink`]; this thread only
//! copies from the shared state (under a short lock, see [`app::App::refresh`]) when
//! it changed ([`app::App::outdated`]), draws only then or after a key, at a bounded
//! frame rate, and handles keys. The capture never waits on drawing.

pub mod app;
pub(crate) mod rows;
pub mod state;
pub mod ui;

use crate::filter;
use app::App;
use crossterm::event::{self, Event, KeyEventKind};
use state::{SharedState, lock};
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Time between frames while keys come: at most 20 per second.
const FRAME: Duration = Duration::from_millis(50);
/// How often the shared state is looked at for changes. Only a change, a key, a
/// resize or (live) the wall clock's next second makes the UI copy and draw: an idle
/// TUI sleeps in `poll` between looks.
const REFRESH: Duration = Duration::from_millis(200);

/// Runs the UI on the calling thread until the user quits or `stop` is raised (a
/// signal), then restores the terminal (also restored on panic, by ratatui's hook)
/// and raises `stop` for the capture.
pub fn run(
    shared: SharedState,
    filter: filter::Filter,
    stop: &'static AtomicBool,
) -> io::Result<()> {
    watch_hangup(stop);
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
    let mut looked: Option<Instant> = None;
    let mut size = None;
    let mut keyed = false;
    let mut dirty = true;
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        let start = Instant::now();
        let now_size = terminal.size()?;
        if size != Some(now_size) {
            size = Some(now_size);
            app.resize(now_size.height);
            dirty = true;
        }
        if keyed || looked.is_none_or(|t| start.duration_since(t) >= REFRESH) {
            looked = Some(start);
            // Locked for the copy only, never while drawing: the capture waits on
            // this lock for every record.
            let st = lock(shared);
            if st.crashed {
                return Err(io::Error::other("the capture thread panicked"));
            }
            let wall = app::wall_ns();
            if keyed || app.outdated(&st, wall) {
                app.refresh_at(&st, start, wall);
                dirty = true;
            }
        }
        if dirty {
            terminal.draw(|f| ui::draw(f, &app, theme))?;
            dirty = false;
        }
        // Sleeps until a key or the next look; once a key came, the ones right
        // behind it are taken too, and the frame follows within FRAME.
        keyed = false;
        let next_look = looked.map_or(start, |t| t + REFRESH);
        loop {
            let until = if keyed { start + FRAME } else { next_look };
            if !event::poll(until.saturating_duration_since(Instant::now()))? {
                break;
            }
            match event::read()? {
                Event::Key(k) if k.kind != KeyEventKind::Release => {
                    app.on_key(k);
                    keyed = true;
                    if app.quit {
                        return Ok(());
                    }
                }
                Event::Resize(..) => keyed = true,
                _ => {}
            }
        }
    }
}

/// Ends the process when its terminal goes away (a closed tmux pane, ssh session or
/// terminal window). crossterm 0.29 cannot: once the terminal is gone its reads
/// return 0 bytes and it retries at once, forever, inside `event::poll` (crossterm
/// issue 793), where neither `stop` nor a timeout reaches the loop; and the kernel
/// sends SIGHUP only to the session leader, often a shell that dies without passing
/// it on. Such orphans each burned a core's quarter for hours. A thread waits in
/// poll(2) for the hangup on the terminal it draws on, raises `stop`, gives the loop
/// a moment in case it is not stuck, then exits (129, as SIGHUP would).
fn watch_hangup(stop: &'static AtomicBool) {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::io::IsTerminal;
    use std::os::fd::AsFd;
    if !io::stdout().is_terminal() {
        return;
    }
    std::thread::spawn(move || {
        let out = io::stdout();
        // No events asked: poll reports only the hangup (and errors), never data.
        let mut fds = [PollFd::new(out.as_fd(), PollFlags::empty())];
        loop {
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(n) if n > 0 => {
                    let gone = PollFlags::POLLHUP | PollFlags::POLLERR | PollFlags::POLLNVAL;
                    if fds[0].revents().is_some_and(|r| r.intersects(gone)) {
                        break;
                    }
                }
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(_) => return,
            }
        }
        stop.store(true, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(500));
        std::process::exit(129);
    });
}
