//! Checks [`MpiCollective`] across real processes; `tests/mpi.rs` runs it as `mpirun -np N mpi_check MODE`.
//!
//! * `check` (3 or more ranks, so that the order of a sum shows in its bits): every operation, with the default
//!   message limit and again with a tiny one so that every piecewise path runs, against results computed here from
//!   the gathered inputs. Prints `rank R: check ok`.
//! * `stall`: after a first barrier, rank 1 stops calling (sleeps) while the others wait in a second one: the
//!   watchdog must end the run within its 5 s timeout.
//! * `die`: after a first barrier, rank 1 exits without finalising MPI: the launcher must end the run.
//! * `bench`: times `all_reduce_sum` on buffers the size of this project's models' gradients (the Connect Four
//!   network's, the Countdown demo's, the Countdown `--full` model's); rank 0 prints one line per size.
//!
//! A failed check exits at once, without finalising MPI, so that the launcher stops every rank rather than leave
//! them waiting for the one that left.

use std::fmt::Display;
use std::time::Duration;

use selfplay_collective::{Collective, CollectiveError, MpiCollective, launched_by_mpi};

/// Long enough for a loaded machine running more ranks than it has cores.
const CHECK_TIMEOUT: Duration = Duration::from_secs(60);
/// The timeout `tests/mpi.rs` expects a stalled run to end within.
const STALL_TIMEOUT: Duration = Duration::from_secs(5);
/// A message limit small enough that sums, gathers and broadcasts all run in many pieces.
const TINY_MESSAGE_LIMIT: usize = 7;

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let timeout = if mode == "stall" || mode == "die" { STALL_TIMEOUT } else { CHECK_TIMEOUT };
    let collective = done(MpiCollective::init(timeout), "MpiCollective::init");
    match mode.as_str() {
        "check" => check(collective),
        "stall" | "die" => leave(&collective, &mode),
        "bench" => bench(&collective),
        _ => fail(format!("usage: mpi_check check|stall|die|bench (got {mode:?})")),
    }
}

/// Times `all_reduce_sum` of gradient-sized buffers beside MPI's own `MPI_Allreduce` (whose order of addition
/// is the library's): the median of 21 calls after 3 unmeasured ones.
fn bench(collective: &MpiCollective) {
    use mpi::collective::SystemOperation;
    use mpi::traits::CommunicatorCollectives;
    let world = mpi::topology::SimpleCommunicator::world();
    let median = |mut call: Box<dyn FnMut() + '_>| {
        let mut times = Vec::new();
        for round in 0..24 {
            done(collective.barrier(), "barrier");
            let started = std::time::Instant::now();
            call();
            if round >= 3 {
                times.push(started.elapsed().as_secs_f64());
            }
        }
        times.sort_by(f64::total_cmp);
        times[times.len() / 2]
    };
    for (name, floats) in [("Connect Four net", 99_329), ("Countdown demo", 800_385), ("Countdown --full", 4_700_000)] {
        let mut values = vec![1.0f32; floats];
        let ours = median(Box::new(|| done(collective.all_reduce_sum(&mut values), "all_reduce_sum")));
        let (send, mut received) = (vec![1.0f32; floats], vec![0.0f32; floats]);
        let theirs = median(Box::new(|| world.all_reduce_into(&send[..], &mut received[..], SystemOperation::sum())));
        if collective.rank() == 0 {
            let megabytes = floats as f64 * 4.0 / 1e6;
            println!(
                "{} ranks, {name} ({megabytes:.1} MB): all_reduce_sum {:.2} ms ({:.2} GB/s), MPI_Allreduce {:.2} ms ({:.2} GB/s)",
                collective.world_size(),
                ours * 1e3,
                megabytes / 1e3 / ours,
                theirs * 1e3,
                megabytes / 1e3 / theirs
            );
        }
    }
}

/// Ends the process at the first failure (see the module docs).
fn fail(message: impl Display) -> ! {
    eprintln!("error: mpi_check: {message}");
    std::process::exit(1)
}

fn ensure(ok: bool, message: impl FnOnce() -> String) {
    if !ok {
        fail(message());
    }
}

fn done<T>(result: Result<T, CollectiveError>, operation: &str) -> T {
    result.unwrap_or_else(|err| fail(format!("{operation}: {err}")))
}

fn check(collective: MpiCollective) {
    let (rank, world) = (collective.rank(), collective.world_size());
    ensure(launched_by_mpi(), || "launched_by_mpi() is false under the launcher".into());
    ensure(world >= 3, || format!("check needs at least 3 ranks for order to matter, got {world}"));
    exercise(&collective);
    let collective = collective.with_message_limit(TINY_MESSAGE_LIMIT);
    exercise(&collective);
    done(collective.barrier(), "barrier");
    println!("rank {rank}: check ok");
}

/// Rank `rank`'s `i`th summand: every element sees 1e8, 1 and −1e8 in some order of the ranks, so its sum is 0 or 1
/// depending on the order it is added in.
fn summand(rank: usize, i: usize) -> f32 {
    [1e8f32, 1.0, -1e8][(rank + i) % 3] * (1 + i % 5) as f32
}

fn floats(bytes: &[u8]) -> Vec<f32> {
    bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

fn le_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// The element-wise sum of the ranks' `parts`, added in the order `ranks` gives: the test's own oracle.
fn sum_in(parts: &[Vec<u8>], ranks: impl Iterator<Item = usize>) -> Vec<f32> {
    let mut sum: Option<Vec<f32>> = None;
    for part in ranks.map(|r| floats(&parts[r])) {
        sum = Some(match sum {
            None => part,
            Some(sum) => sum.iter().zip(&part).map(|(a, b)| a + b).collect(),
        });
    }
    sum.unwrap_or_default()
}

fn exercise(c: &MpiCollective) {
    let (rank, world) = (c.rank(), c.world_size());
    let limit = format!("{c:?}");

    // Sums: in rank order, the same bits on every rank; lengths shorter than the world, not a multiple of it, empty.
    for n in [0, 1, world + 1, 1001] {
        let mine: Vec<f32> = (0..n).map(|i| summand(rank, i)).collect();
        let inputs = done(c.all_gather(&le_bytes(&mine)), "all_gather of the summands");
        let want = sum_in(&inputs, 0..world);
        if n >= 2 {
            ensure(want != sum_in(&inputs, (0..world).rev()), || format!("n {n}: the order does not show"));
        }
        let mut got = mine;
        done(c.all_reduce_sum(&mut got), "all_reduce_sum");
        ensure(le_bytes(&got) == le_bytes(&want), || format!("{limit} n {n}: sum {got:?}, rank order gives {want:?}"));
        let everyone = done(c.all_gather(&le_bytes(&got)), "all_gather of the sums");
        ensure(everyone.iter().all(|sum| *sum == everyone[0]), || format!("{limit} n {n}: the ranks' sums differ"));
    }

    // A length mismatch is the typed error on every rank, and the ranks stay in step after it.
    let mut uneven = vec![1.0f32; 2 + rank];
    match c.all_reduce_sum(&mut uneven) {
        Err(CollectiveError::LengthMismatch { rank: 1, expected: 2, got: 3, .. }) => {}
        other => fail(format!("{limit}: uneven lengths gave {other:?}")),
    }

    // Gathers of different lengths per rank: all empty, rank 0 empty, all longer than a tiny message.
    let lengths: [fn(usize) -> usize; 3] = [|_| 0, |r| r * 37 % 101, |r| 1000 + 13 * r];
    for length in lengths {
        let bytes = |r: usize| (0..length(r)).map(|i| (r * 31 + i) as u8).collect::<Vec<u8>>();
        let gathered = done(c.all_gather(&bytes(rank)), "all_gather");
        ensure(gathered == (0..world).map(bytes).collect::<Vec<_>>(), || format!("{limit}: all_gather {gathered:?}"));
    }

    // Broadcasts from the last rank and from rank 0, into buffers of other lengths; a root outside the world.
    let root = world - 1;
    let sent: Vec<u8> = (0..777).map(|i| (i * 7) as u8).collect();
    let mut bytes = if rank == root { sent.clone() } else { vec![9; 5 + rank] };
    done(c.broadcast(root, &mut bytes), "broadcast");
    ensure(bytes == sent, || format!("{limit}: broadcast from {root} gave {} bytes", bytes.len()));
    let mut bytes = if rank == 0 { Vec::new() } else { vec![9; 5] };
    done(c.broadcast(0, &mut bytes), "broadcast");
    ensure(bytes.is_empty(), || format!("{limit}: an empty broadcast gave {bytes:?}"));
    ensure(matches!(c.broadcast(world, &mut bytes), Err(CollectiveError::NoSuchRank { .. })), || {
        format!("{limit}: a broadcast from rank {world} did not fail")
    });

    done(c.barrier(), "barrier");
}

/// Rank 1 stops taking part after a first barrier (`stall`: sleeps; `die`: exits); the others wait for it.
fn leave(c: &MpiCollective, mode: &str) {
    ensure(c.world_size() >= 2, || format!("{mode} needs at least 2 ranks"));
    done(c.barrier(), "barrier");
    if c.rank() == 1 {
        if mode == "die" {
            std::process::exit(3);
        }
        std::thread::sleep(Duration::from_secs(600));
    }
    done(c.barrier(), "barrier");
    fail(format!("rank {} passed a barrier that rank 1 never reached", c.rank()));
}
