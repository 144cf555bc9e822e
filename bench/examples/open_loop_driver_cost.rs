//! The open-loop driver's own CPU (`drive::open_loop_run`) at 60,000
//! operations/s for 4 s, twice: with operations that complete at once, and
//! with operations answered through a channel by another task (the SDK's
//! shape). The bench's open-loop latency runs charge this to the bench
//! process, beside the SDK client's work.
//!
//! `cargo run --release -p tributary-bench --example open_loop_driver_cost`
use std::time::Duration;

use tributary_bench::{
    cpu::cpu_seconds,
    drive::{OpenLoop, open_loop_run},
};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    type Reply = tokio::sync::oneshot::Sender<()>;
    let (rate, duration) = (60_000, Duration::from_secs(4));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Reply>();
    tokio::spawn(async move {
        while let Some(reply) = rx.recv().await {
            let _ = reply.send(());
        }
    });
    let cpu = || cpu_seconds(std::process::id()).unwrap_or(f64::NAN);
    let report = |what: &str, cpu: f64, run: &OpenLoop| {
        println!(
            "{what}: {:.2} µs per operation ({:.2} cores); {}",
            cpu * 1e6 / run.result.ok.max(1) as f64,
            cpu / duration.as_secs_f64(),
            run.summary()
        );
    };
    for _ in 0..2 {
        let before = cpu();
        let bare = open_loop_run(rate, duration, |_| async { Ok(()) }).await;
        report("completing at once", cpu() - before, &bare);
        let before = cpu();
        let answered = open_loop_run(rate, duration, |_| {
            let tx = tx.clone();
            async move {
                let (reply, answer) = tokio::sync::oneshot::channel();
                tx.send(reply)?;
                answer.await?;
                Ok(())
            }
        })
        .await;
        report("answered by another task", cpu() - before, &answered);
        anyhow::ensure!(
            answered.result.ok == bare.result.ok,
            "every operation should succeed"
        );
    }
    Ok(())
}
