//! Whole messages inside one feed must not allocate. Lives outside
//! `src/pgwire` so the counting allocator is not copied into the project.

use pgscope::pgwire::{Body, ConnDecoder, Dir, Event};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn msg(typ: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![typ];
    v.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
    v.extend_from_slice(body);
    v
}

#[test]
fn whole_messages_do_not_allocate() {
    let mut d = ConnDecoder::new(false);
    let mut startup = 18u32.to_be_bytes().to_vec();
    startup.extend_from_slice(&196608u32.to_be_bytes());
    startup.extend_from_slice(b"user\0bob\0\0");
    let mut n = 0;
    d.feed(Dir::Frontend, &startup, &mut |_| n += 1);
    let fe = [
        msg(b'Q', b"select 1\0"),
        msg(b'P', b"\0select $1\0\0\x01\0\0\0\x17"),
        msg(b'B', b"\0\0\0\0\0\x01\0\0\0\x017\0\0"),
        msg(b'S', b""),
    ]
    .concat();
    let be = [
        msg(b'R', b"\0\0\0\0"),
        msg(
            b'T',
            b"\0\x01x\0\0\0\0\0\0\0\0\0\0\x17\0\x04\xff\xff\xff\xff\0\0",
        ),
        msg(b'D', b"\0\x01\0\0\0\x017"),
        msg(b'C', b"SELECT 1\0"),
        msg(b'Z', b"I"),
    ]
    .concat();
    let before = ALLOCS.with(Cell::get);
    let mut names = 0usize;
    let mut sink = |e: Event<'_>| {
        assert!(!matches!(e, Event::Anomaly(_)), "{e:?}");
        if let Event::Msg(m) = e {
            assert!(m.body.name().is_some(), "{m:?}");
            names += m.name().len();
            if let Body::DataRow { columns } = m.body {
                names += columns.iter().count();
            }
        }
    };
    for _ in 0..100 {
        d.feed(Dir::Frontend, &fe, &mut sink);
        d.feed(Dir::Backend, &be, &mut sink);
    }
    assert_eq!(ALLOCS.with(Cell::get), before);
    // Straddling messages reuse the direction's buffer once it exists.
    let split = |d: &mut ConnDecoder, sink: &mut dyn FnMut(Event<'_>)| {
        for part in fe.chunks(7) {
            d.feed(Dir::Frontend, part, &mut |e| sink(e));
        }
        for part in be.chunks(3) {
            d.feed(Dir::Backend, part, &mut |e| sink(e));
        }
    };
    split(&mut d, &mut sink);
    let warm = ALLOCS.with(Cell::get);
    for _ in 0..100 {
        split(&mut d, &mut sink);
    }
    assert_eq!(ALLOCS.with(Cell::get), warm);
    assert!(names > 0 && n == 1);
}
