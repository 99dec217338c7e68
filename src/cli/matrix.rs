//! `mmrelay matrix listen`: a diagnostic that runs the Matrix client alone and prints what
//! arrives in the bridged rooms (the config's `matrix_rooms`, or `--room`).

use std::process::ExitCode;

use clap::Subcommand;

use super::auth::matrix_paths;
use super::Paths;
use crate::matrix::client::{self, MatrixOptions};
use crate::matrix::content::Incoming;
use crate::matrix::event::MatrixEvent;

#[derive(Debug, Subcommand)]
pub enum MatrixCommand {
    /// Sync the bridged rooms and print each message and reaction (Ctrl-C to stop)
    Listen {
        /// A room id or alias (repeat); default: the config's matrix_rooms
        #[arg(long = "room", value_name = "ROOM")]
        rooms: Vec<String>,
    },
}

pub async fn run(paths: &Paths, cmd: MatrixCommand) -> ExitCode {
    let MatrixCommand::Listen { rooms } = cmd;
    let rooms = if rooms.is_empty() {
        let rooms = crate::config::read_text(&paths.config).and_then(|t| {
            crate::config::relay::matrix_rooms(&t, &crate::config::process_env)
                .map_err(|p| crate::config::relay::format_problems(&paths.config, &p))
        });
        match rooms {
            Ok(rooms) => rooms.into_iter().map(|r| r.id).collect(),
            Err(e) => {
                eprintln!("error: {e}\n(or name the rooms with --room)");
                return ExitCode::FAILURE;
            }
        }
    } else {
        rooms
    };
    let (handle, mut events, task) =
        match client::start(&matrix_paths(paths), MatrixOptions::new(rooms)).await {
            Ok(x) => x,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
    let stop = crate::service::signal::shutdown_signal();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            ev = events.recv() => match ev {
                None => break,
                Some(MatrixEvent::Incoming(Incoming::Message(m))) => println!(
                    "{} {} {} ({}): {}{}",
                    m.room_id,
                    m.kind.msgtype(),
                    m.sender,
                    m.sender_name,
                    m.body,
                    m.in_reply_to.map(|r| format!(" [reply to {r}]")).unwrap_or_default()
                ),
                Some(MatrixEvent::Incoming(Incoming::Reaction(r))) => {
                    println!("{} m.reaction {} ({}): {} on {}", r.room_id, r.sender, r.sender_name, r.key, r.relates_to)
                }
                Some(MatrixEvent::Sent { .. })
                | Some(MatrixEvent::SendFailed { .. })
                | Some(MatrixEvent::Synced { .. })
                | Some(MatrixEvent::Undecryptable(_))
                | Some(MatrixEvent::UndecryptableDone { .. }) => {}
            }
        }
    }
    handle.stop().await;
    task.abort();
    ExitCode::SUCCESS
}
