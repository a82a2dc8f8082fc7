//! Several real `basalt` processes forming one raft cluster on loopback.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::peer_proxy::PeerProxy;
use super::{free_port, Basalt, Starting};

/// One member's fixed coordinates: a restart reuses them.
#[derive(Clone)]
pub struct Seat {
    pub name: String,
    pub client_port: u16,
    pub peer_port: u16,
    /// The peer port the others dial: `peer_port`, or a fault-injecting proxy's.
    pub advertised_peer_port: u16,
    pub data_dir: PathBuf,
}

/// A cluster of members, some running.
pub struct Cluster {
    pub seats: Vec<Seat>,
    pub members: Vec<Option<Basalt>>,
    initial_cluster: String,
    /// The proxy in front of the peer ports, for partition tests.
    pub proxy: Option<PeerProxy>,
    /// Per member, flags added to its seat's.
    extra_flags: Vec<Vec<String>>,
    /// The peer URLs' scheme.
    scheme: String,
}

impl Cluster {
    /// Starts `size` members in `dir` (all spawned before any is awaited: none is ready until
    /// a quorum runs), with 100 ms heartbeats and 1 s elections as etcd's defaults.
    pub fn start(dir: &Path, size: usize) -> Cluster {
        Cluster::start_with_flags(dir, size, &[])
    }

    /// Like `start`, every member with `extra_flags` too.
    pub fn start_with_flags(dir: &Path, size: usize, extra_flags: &[&str]) -> Cluster {
        let mut cluster = Cluster::plan(dir, size, "http");
        for i in 0..size {
            cluster.set_flags(i, extra_flags.iter().map(|f| f.to_string()).collect());
        }
        cluster.start_all();
        cluster
    }

    /// [`Cluster::start`] with every peer link through a [`PeerProxy`] that can cut them.
    pub fn start_behind_proxy(dir: &Path, size: usize) -> Cluster {
        let mut cluster = Cluster::plan_seated(dir, size, "http", true);
        cluster.start_all();
        cluster
    }

    /// The seats of `size` members in `dir` whose peer URLs use `scheme` (`http`, `https`);
    /// none runs yet.
    pub fn plan(dir: &Path, size: usize, scheme: &str) -> Cluster {
        Cluster::plan_seated(dir, size, scheme, false)
    }

    fn plan_seated(dir: &Path, size: usize, scheme: &str, behind_proxy: bool) -> Cluster {
        let mut seats: Vec<Seat> = (0..size)
            .map(|i| {
                let peer_port = free_port();
                Seat {
                    name: format!("m{i}"),
                    client_port: free_port(),
                    peer_port,
                    advertised_peer_port: peer_port,
                    data_dir: dir.join(format!("m{i}")),
                }
            })
            .collect();
        let proxy = behind_proxy.then(|| {
            let targets: Vec<u16> = seats.iter().map(|seat| seat.peer_port).collect();
            let proxy = PeerProxy::start(&targets);
            for (seat, &port) in seats.iter_mut().zip(&proxy.ports) {
                seat.advertised_peer_port = port;
            }
            proxy
        });
        let initial_cluster = seats
            .iter()
            .map(|seat| {
                format!(
                    "{}={scheme}://127.0.0.1:{}",
                    seat.name, seat.advertised_peer_port
                )
            })
            .collect::<Vec<_>>()
            .join(",");
        Cluster {
            members: (0..size).map(|_| None).collect(),
            extra_flags: (0..size).map(|_| Vec::new()).collect(),
            seats,
            initial_cluster,
            proxy,
            scheme: scheme.to_string(),
        }
    }

    /// Gives member `i` these flags besides its seat's (from its next start on).
    pub fn set_flags(&mut self, i: usize, flags: Vec<String>) {
        self.extra_flags[i] = flags;
    }

    /// Spawns every member, then waits until each is ready.
    pub fn start_all(&mut self) {
        let starting: Vec<Starting> = (0..self.seats.len()).map(|i| self.spawn(i)).collect();
        for (i, member) in starting.into_iter().enumerate() {
            self.members[i] = Some(member.wait_ready());
        }
    }

    /// Starts member `i` without waiting for it (a member is ready only once a quorum runs).
    pub fn spawn(&self, i: usize) -> Starting {
        let seat = &self.seats[i];
        let listen_peer_url = format!("{}://127.0.0.1:{}", self.scheme, seat.peer_port);
        let advertised_peer_url =
            format!("{}://127.0.0.1:{}", self.scheme, seat.advertised_peer_port);
        let mut flags: Vec<&str> = vec![
            "--name",
            &seat.name,
            "--listen-peer-urls",
            &listen_peer_url,
            "--initial-advertise-peer-urls",
            &advertised_peer_url,
            "--initial-cluster",
            &self.initial_cluster,
            "--initial-cluster-token",
            "basalt-test-cluster",
        ];
        flags.extend(self.extra_flags[i].iter().map(String::as_str));
        Basalt::spawn(seat.data_dir.clone(), seat.client_port, &flags, &[])
    }

    /// A seat for a member to add: a name and free ports, not started.
    pub fn new_seat(&mut self, dir: &Path) -> usize {
        let i = self.seats.len();
        let peer_port = free_port();
        self.seats.push(Seat {
            name: format!("m{i}"),
            client_port: free_port(),
            peer_port,
            advertised_peer_port: peer_port,
            data_dir: dir.join(format!("m{i}")),
        });
        self.members.push(None);
        self.extra_flags.push(Vec::new());
        i
    }

    /// Starts member `i` (added with `member add` first) with `--initial-cluster-state
    /// existing`: it asks the running members who it is, then follows the log.
    pub fn join(&mut self, i: usize) {
        let seat = &self.seats[i];
        let peer_url = format!("http://127.0.0.1:{}", seat.peer_port);
        let initial_cluster = format!("{},{}={}", self.initial_cluster, seat.name, peer_url);
        self.join_with(i, &initial_cluster);
    }

    /// `etcdctl member add <seat i's name> --learner --peer-urls <its peer URL>` through member
    /// `through`, retried until it succeeds or `limit` passes; what etcdctl printed.
    pub fn add_learner(&self, through: usize, i: usize, limit: Duration) -> Result<String, String> {
        let seat = &self.seats[i];
        let peer_url = format!("http://127.0.0.1:{}", seat.peer_port);
        self.member(through).etcdctl_until_ok(
            &[
                "member",
                "add",
                &seat.name,
                "--learner",
                "--peer-urls",
                &peer_url,
            ],
            limit,
        )
    }

    /// Like [`Cluster::join`], with the `--initial-cluster` that `member add` printed (the
    /// members of that moment, which differ from the bootstrap's once members were removed).
    pub fn join_with(&mut self, i: usize, initial_cluster: &str) {
        let seat = &self.seats[i];
        let peer_url = format!("http://127.0.0.1:{}", seat.peer_port);
        let member = Basalt::spawn(
            seat.data_dir.clone(),
            seat.client_port,
            &[
                "--name",
                &seat.name,
                "--listen-peer-urls",
                &peer_url,
                "--initial-advertise-peer-urls",
                &peer_url,
                "--initial-cluster",
                initial_cluster,
                "--initial-cluster-state",
                "existing",
            ],
            &[],
        )
        .wait_ready();
        self.members[i] = Some(member);
    }

    /// Member `i`'s process, taken out of the cluster (to wait for it to exit).
    pub fn take(&mut self, i: usize) -> Basalt {
        self.members[i].take().expect("member is running")
    }

    /// Restarts member `i` (stopped before) on its data directory and waits until it serves.
    pub fn restart(&mut self, i: usize) {
        assert!(self.members[i].is_none(), "member {i} is running");
        self.members[i] = Some(self.spawn(i).wait_ready());
    }

    /// Stops member `i` with SIGTERM and waits for its process to exit.
    pub fn terminate(&mut self, i: usize, limit: Duration) -> std::process::ExitStatus {
        self.members[i]
            .take()
            .expect("member is running")
            .terminate(limit)
    }

    /// Kills member `i` with SIGKILL.
    pub fn kill_9(&mut self, i: usize) {
        let member = self.members[i].take().expect("member is running");
        member.kill_9();
    }

    /// Running member `i`.
    pub fn member(&self, i: usize) -> &Basalt {
        self.members[i].as_ref().expect("member is running")
    }

    /// Indices of the running members.
    pub fn running(&self) -> Vec<usize> {
        (0..self.members.len())
            .filter(|&i| self.members[i].is_some())
            .collect()
    }

    /// The leader's member ID as member `i` reports it in `endpoint status` (0: none).
    pub fn leader_seen_by(&self, i: usize) -> (u64, u64) {
        let output = self
            .member(i)
            .etcdctl(&["endpoint", "status", "-w", "json"], "");
        if !output.status.success() {
            return (0, 0);
        }
        let text = String::from_utf8_lossy(&output.stdout);
        let number = |field: &str| -> u64 {
            text.split(&format!("\"{field}\":"))
                .nth(1)
                .and_then(|rest| {
                    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
                    digits.parse().ok()
                })
                .unwrap_or(0)
        };
        (number("leader"), number("member_id"))
    }

    /// Waits until every running member names the same leader, and returns the index of the
    /// leader's seat.
    pub fn wait_for_leader(&self, limit: Duration) -> usize {
        let deadline = Instant::now() + limit;
        loop {
            let seen: Vec<(usize, (u64, u64))> = self
                .running()
                .into_iter()
                .map(|i| (i, self.leader_seen_by(i)))
                .collect();
            let leader = seen[0].1 .0;
            if leader != 0 && seen.iter().all(|(_, (l, _))| *l == leader) {
                if let Some((i, _)) = seen.iter().find(|(_, (_, me))| *me == leader) {
                    return *i;
                }
            }
            assert!(
                Instant::now() < deadline,
                "no agreed leader among the running members within {limit:?}: {seen:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Every running member's ID, by seat (0 for a member not running or not answering).
    pub fn member_ids(&self) -> Vec<u64> {
        (0..self.members.len())
            .map(|i| {
                if self.members[i].is_some() {
                    self.leader_seen_by(i).1
                } else {
                    0
                }
            })
            .collect()
    }

    /// Cuts member `i` off from every other member (needs [`Cluster::start_behind_proxy`]).
    pub fn isolate(&self, i: usize, ids: &[u64]) {
        let proxy = self.proxy.as_ref().expect("started behind a proxy");
        proxy.isolate(ids[i], ids);
    }

    /// Restores every peer link.
    pub fn heal(&self) {
        self.proxy.as_ref().expect("started behind a proxy").heal();
    }
}
