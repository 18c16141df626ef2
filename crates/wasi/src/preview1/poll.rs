//! `poll_oneoff`: waits for clocks and fd readiness.
//!
//! Files and in-memory pipes never block, so their subscriptions are ready at once
//! (with the bytes left to read, or the room left to write, where known). Inherited
//! stdin and sockets are handed to the host's `poll` together with the earliest clock
//! deadline as its timeout. With nothing to poll, the call sleeps until the earliest
//! clock. A subscription that cannot be served (a bad fd, a missing right, an unknown
//! clock) becomes an event carrying that error, and is ready at once.
//!
//! The call returns as soon as anything is ready, with an event for everything ready by
//! then, clocks already due included, in the order of the subscriptions.

use crate::abi::{
    EVENT_FD_READWRITE_HANGUP, EVENT_SIZE, Rights, SUBSCRIPTION_CLOCK_ABSTIME, SUBSCRIPTION_SIZE,
    clockid, eventtype,
};
use crate::ctx::WasiCtx;
use crate::errno::Errno;
use crate::memory::GuestMemory;
use crate::preview1::clock::{host_clock, now};
use crate::stdio::{Input, Output};
use crate::table::{Descriptor, FdTable};
use rustix::event::{PollFd, PollFlags};
use rustix::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};
use system_interface::fs::FileIoExt;

/// One subscription, as far as the host is concerned.
enum Wait<'a> {
    /// A clock that expires at the deadline (never, if `None`).
    Clock(Option<Instant>),
    /// An event that is ready now.
    Ready(Ready),
    /// A host fd to poll.
    Host(BorrowedFd<'a>),
}

/// The contents of a ready event.
struct Ready {
    error: Errno,
    nbytes: u64,
    hangup: bool,
}

impl Ready {
    fn ok(nbytes: u64) -> Wait<'static> {
        Wait::Ready(Ready {
            error: Errno::Success,
            nbytes,
            hangup: false,
        })
    }

    fn eof(nbytes: u64) -> Wait<'static> {
        Wait::Ready(Ready {
            error: Errno::Success,
            nbytes,
            hangup: nbytes == 0,
        })
    }

    fn error(error: Errno) -> Wait<'static> {
        Wait::Ready(Ready {
            error,
            nbytes: 0,
            hangup: false,
        })
    }
}

/// The deadline of a clock subscription.
fn clock_wait(start: Instant, id: u32, timeout: u64, flags: u16) -> Wait<'static> {
    if flags & !SUBSCRIPTION_CLOCK_ABSTIME != 0 {
        return Ready::error(Errno::Inval);
    }
    let clock = match id {
        clockid::REALTIME | clockid::MONOTONIC => match host_clock(id) {
            Ok(clock) => clock,
            Err(e) => return Ready::error(e),
        },
        clockid::PROCESS_CPUTIME | clockid::THREAD_CPUTIME => {
            return Ready::error(Errno::Notsup);
        }
        _ => return Ready::error(Errno::Inval),
    };
    let wait = if flags & SUBSCRIPTION_CLOCK_ABSTIME != 0 {
        match now(clock) {
            Ok(now) => timeout.saturating_sub(now),
            Err(e) => return Ready::error(e),
        }
    } else {
        timeout
    };
    Wait::Clock(start.checked_add(Duration::from_nanos(wait)))
}

/// What an fd subscription waits for.
fn fd_wait<'a>(table: &'a FdTable, stdin: &'a std::io::Stdin, fd: u32, read: bool) -> Wait<'a> {
    let entry = match table.get(fd) {
        Ok(entry) => entry,
        Err(e) => return Ready::error(e),
    };
    if let Err(e) = entry.require(Rights::POLL_FD_READWRITE) {
        return Ready::error(e);
    }
    match (&entry.desc, read) {
        (Descriptor::File(file), true) => {
            let size = file.metadata().map_or(0, |md| md.len());
            let pos = file.stream_position().unwrap_or(size);
            Ready::ok(size.saturating_sub(pos))
        }
        (Descriptor::File(_), false) => Ready::ok(0),
        (Descriptor::Input(Input::Empty), true) => Ready::eof(0),
        (Descriptor::Input(Input::Pipe(pipe)), true) => Ready::eof(pipe.remaining() as u64),
        (Descriptor::Input(Input::Inherit), true) => Wait::Host(stdin.as_fd()),
        (Descriptor::Output(Output::Pipe(pipe)), false) => Ready::ok(pipe.room() as u64),
        (Descriptor::Output(_), false) => Ready::ok(0),
        (Descriptor::Listener(listener), true) => Wait::Host(listener.as_fd()),
        (Descriptor::Stream(stream), _) => Wait::Host(stream.as_fd()),
        _ => Ready::error(Errno::Badf),
    }
}

/// An `event` record.
fn event(userdata: u64, ty: u8, ready: &Ready) -> [u8; EVENT_SIZE as usize] {
    let mut event = [0u8; EVENT_SIZE as usize];
    event[0..8].copy_from_slice(&userdata.to_le_bytes());
    event[8..10].copy_from_slice(&ready.error.raw().to_le_bytes());
    event[10] = ty;
    event[16..24].copy_from_slice(&ready.nbytes.to_le_bytes());
    let flags = if ready.hangup {
        EVENT_FD_READWRITE_HANGUP
    } else {
        0
    };
    event[24..26].copy_from_slice(&flags.to_le_bytes());
    event
}

/// `poll_oneoff`.
pub(crate) fn poll_oneoff(
    cx: &mut WasiCtx,
    mem: &mut GuestMemory<'_>,
    in_ptr: u32,
    out_ptr: u32,
    nsubscriptions: u32,
    nevents_ptr: u32,
) -> Result<(), Errno> {
    if nsubscriptions == 0 {
        return Err(Errno::Inval);
    }
    let n = u64::from(nsubscriptions);
    mem.check(in_ptr, n * u64::from(SUBSCRIPTION_SIZE))?;
    mem.check(out_ptr, n * u64::from(EVENT_SIZE))?;
    mem.check(nevents_ptr, 4)?;

    let start = Instant::now();
    let stdin = std::io::stdin();
    let mut subs = Vec::with_capacity(nsubscriptions as usize);
    for i in 0..nsubscriptions {
        // The whole array lies in memory, so this does not wrap.
        let at = in_ptr + i * SUBSCRIPTION_SIZE;
        let userdata = mem.read_u64(at)?;
        let ty = mem.read_u8(at + 8)?;
        let wait = match ty {
            eventtype::CLOCK => clock_wait(
                start,
                mem.read_u32(at + 16)?,
                mem.read_u64(at + 24)?,
                mem.read_u16(at + 40)?,
            ),
            eventtype::FD_READ | eventtype::FD_WRITE => fd_wait(
                &cx.table,
                &stdin,
                mem.read_u32(at + 16)?,
                ty == eventtype::FD_READ,
            ),
            _ => return Err(Errno::Inval),
        };
        subs.push((userdata, ty, wait));
    }

    // Events by subscription index, so that they come out in subscription order.
    let mut events: Vec<(usize, [u8; EVENT_SIZE as usize])> = subs
        .iter()
        .enumerate()
        .filter_map(|(i, (userdata, ty, wait))| match wait {
            Wait::Ready(ready) => Some((i, event(*userdata, *ty, ready))),
            _ => None,
        })
        .collect();
    loop {
        // Every clock already due is reported, with whatever else is ready.
        let now = Instant::now();
        for (i, (userdata, ty, wait)) in subs.iter().enumerate() {
            if matches!(wait, Wait::Clock(Some(d)) if *d <= now) {
                let ready = Ready {
                    error: Errno::Success,
                    nbytes: 0,
                    hangup: false,
                };
                events.push((i, event(*userdata, *ty, &ready)));
            }
        }
        if !events.is_empty() {
            break;
        }
        // No clock is due yet, so the earliest is still ahead.
        let deadline = subs
            .iter()
            .filter_map(|(_, _, wait)| match wait {
                Wait::Clock(deadline) => *deadline,
                _ => None,
            })
            .min();
        // A day at most per round, so that "never" needs no special case.
        let timeout = deadline.map_or(Duration::from_secs(86_400), |d| {
            d.saturating_duration_since(now)
        });
        let mut polled = Vec::new();
        let mut pollfds = Vec::new();
        for (i, (_, ty, wait)) in subs.iter().enumerate() {
            if let Wait::Host(fd) = wait {
                let flags = if *ty == eventtype::FD_READ {
                    PollFlags::IN
                } else {
                    PollFlags::OUT
                };
                polled.push(i);
                pollfds.push(PollFd::from_borrowed_fd(*fd, flags));
            }
        }
        if pollfds.is_empty() {
            std::thread::sleep(timeout);
            continue;
        }
        let timespec = rustix::time::Timespec {
            tv_sec: timeout.as_secs().try_into().unwrap_or(i64::MAX),
            tv_nsec: timeout.subsec_nanos().into(),
        };
        match rustix::event::poll(&mut pollfds, Some(&timespec)) {
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
            Ok(_) => {}
        }
        for (&i, pollfd) in polled.iter().zip(&pollfds) {
            let revents = pollfd.revents();
            if revents.is_empty() {
                continue;
            }
            let (userdata, ty, wait) = &subs[i];
            let Wait::Host(fd) = wait else { continue };
            let error = if revents.contains(PollFlags::NVAL) {
                Errno::Badf
            } else if revents.contains(PollFlags::ERR) {
                Errno::Io
            } else {
                Errno::Success
            };
            let nbytes = if *ty == eventtype::FD_READ {
                rustix::io::ioctl_fionread(fd).unwrap_or(0)
            } else {
                0
            };
            let ready = Ready {
                error,
                nbytes,
                hangup: revents.contains(PollFlags::HUP),
            };
            events.push((i, event(*userdata, *ty, &ready)));
        }
        // The next round adds the clocks that came due meanwhile, and ends.
    }
    events.sort_by_key(|(i, _)| *i);

    for (k, (_, event)) in (0u32..).zip(&events) {
        // At most one event per subscription, and the out array lies in memory.
        mem.write(out_ptr + k * EVENT_SIZE, event)?;
    }
    mem.write_u32(nevents_ptr, events.len() as u32)
}
