//! Alarms: replicated state saying a member is out of space (NOSPACE) or corrupt (CORRUPT).
//!
//! As in etcd, every AlarmRequest (GET too) goes through raft and is applied in log order, so
//! every member agrees on the set. The set lives in the engine's cluster table (one record per
//! member and type, key `alarm/` ++ member id ++ type, both big-endian) and in memory for the
//! checks on the write path; while an alarm is raised the apply step refuses what etcd's
//! "capped" (NOSPACE) or "corrupt" appliers refuse.

use std::collections::BTreeSet;

use basalt_engine::{self as engine, Engine, WriteBatch};
use basalt_net::proto::etcdserverpb as pb;
use pb::alarm_request::AlarmAction;
use pb::AlarmType;

const KEY_PREFIX: &[u8] = b"alarm/";

/// The raised alarms, as (alarm type, member id), ordered so GET answers are stable.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AlarmSet {
    raised: BTreeSet<(i32, u64)>,
}

impl AlarmSet {
    /// The alarms stored in `engine`'s newest commit.
    pub fn load(engine: &Engine) -> Result<AlarmSet, String> {
        let view = engine.read().map_err(|e| e.to_string())?;
        let mut raised = BTreeSet::new();
        for (key, _) in view
            .cluster_records(KEY_PREFIX)
            .map_err(|e| e.to_string())?
        {
            let Some(body) = key.strip_prefix(KEY_PREFIX).filter(|b| b.len() == 12) else {
                return Err(format!("the alarm record key {key:?} is malformed"));
            };
            let member = u64::from_be_bytes(body[..8].try_into().expect("8 bytes"));
            let alarm = i32::from_be_bytes(body[8..].try_into().expect("4 bytes"));
            raised.insert((alarm, member));
        }
        Ok(AlarmSet { raised })
    }

    /// Whether any member has raised `alarm`.
    pub fn is_raised(&self, alarm: AlarmType) -> bool {
        self.raised.iter().any(|(a, _)| *a == alarm as i32)
    }

    /// The alarms of type `alarm` (every alarm for `NONE`), as etcd's AlarmStore.Get.
    pub fn get(&self, alarm: i32) -> Vec<pb::AlarmMember> {
        self.raised
            .iter()
            .filter(|(a, _)| alarm == AlarmType::None as i32 || *a == alarm)
            .map(|&(alarm, member_id)| pb::AlarmMember { member_id, alarm })
            .collect()
    }

    /// What etcd's Status lists under `errors` for the raised alarms: each alarm member in the
    /// protobuf text form etcd prints (`memberID:... alarm:NOSPACE `).
    pub fn status_errors(&self) -> Vec<String> {
        self.get(AlarmType::None as i32)
            .iter()
            .map(|m| {
                let name = AlarmType::try_from(m.alarm)
                    .map(|t| t.as_str_name().to_string())
                    .unwrap_or_else(|_| m.alarm.to_string());
                format!("memberID:{} alarm:{} ", m.member_id, name)
            })
            .collect()
    }

    /// Applies one committed AlarmRequest (etcd's applier `Alarm`): GET lists, ACTIVATE adds
    /// (answering the alarm, new or already raised), DEACTIVATE removes (answering the removed
    /// alarm, or nothing if it was not raised). Changes are written into `batch`.
    pub fn apply(
        &mut self,
        batch: &mut WriteBatch<'_>,
        request: &pb::AlarmRequest,
    ) -> Result<pb::AlarmResponse, engine::Error> {
        let mut response = pb::AlarmResponse::default();
        let entry = (request.alarm, request.member_id);
        match AlarmAction::try_from(request.action) {
            Ok(AlarmAction::Get) => response.alarms = self.get(request.alarm),
            Ok(AlarmAction::Activate) => {
                if request.alarm == AlarmType::None as i32 {
                    return Ok(response);
                }
                if self.raised.insert(entry) {
                    batch.put_cluster_record(&key(entry), &[])?;
                    tracing::warn!(
                        member_id = format!("{:x}", request.member_id),
                        alarm = ?AlarmType::try_from(request.alarm),
                        "alarm raised"
                    );
                }
                response.alarms.push(member(entry));
            }
            Ok(AlarmAction::Deactivate) => {
                if self.raised.remove(&entry) {
                    batch.delete_cluster_record(&key(entry))?;
                    tracing::warn!(
                        member_id = format!("{:x}", request.member_id),
                        alarm = ?AlarmType::try_from(request.alarm),
                        "alarm disarmed"
                    );
                    response.alarms.push(member(entry));
                }
            }
            // etcd answers an unknown action with an empty response.
            Err(_) => {}
        }
        Ok(response)
    }
}

fn key((alarm, member): (i32, u64)) -> Vec<u8> {
    let mut key = KEY_PREFIX.to_vec();
    key.extend_from_slice(&member.to_be_bytes());
    key.extend_from_slice(&alarm.to_be_bytes());
    key
}

fn member((alarm, member_id): (i32, u64)) -> pb::AlarmMember {
    pb::AlarmMember { member_id, alarm }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(action: AlarmAction, member_id: u64, alarm: AlarmType) -> pb::AlarmRequest {
        pb::AlarmRequest {
            action: action as i32,
            member_id,
            alarm: alarm as i32,
        }
    }

    #[test]
    fn activate_get_deactivate_persist_like_etcds_alarm_store() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path().join("db")).unwrap();
        let mut alarms = AlarmSet::load(&engine).unwrap();
        let mut batch = engine.write().unwrap();
        let raised = alarms
            .apply(
                &mut batch,
                &request(AlarmAction::Activate, 7, AlarmType::Nospace),
            )
            .unwrap();
        assert_eq!(raised.alarms.len(), 1);
        // Raising it again answers the existing alarm; NONE cannot be raised.
        let again = alarms
            .apply(
                &mut batch,
                &request(AlarmAction::Activate, 7, AlarmType::Nospace),
            )
            .unwrap();
        assert_eq!(again.alarms, raised.alarms);
        let none = alarms
            .apply(
                &mut batch,
                &request(AlarmAction::Activate, 7, AlarmType::None),
            )
            .unwrap();
        assert!(none.alarms.is_empty());
        batch.commit().unwrap();
        assert!(alarms.is_raised(AlarmType::Nospace));
        assert!(!alarms.is_raised(AlarmType::Corrupt));
        assert_eq!(alarms.status_errors(), vec!["memberID:7 alarm:NOSPACE "]);

        let reloaded = AlarmSet::load(&engine).unwrap();
        assert_eq!(reloaded, alarms);
        assert_eq!(reloaded.get(AlarmType::Corrupt as i32), vec![]);

        let mut batch = engine.write().unwrap();
        // Deactivating another member's (absent) alarm answers nothing.
        let other = alarms
            .apply(
                &mut batch,
                &request(AlarmAction::Deactivate, 8, AlarmType::Nospace),
            )
            .unwrap();
        assert!(other.alarms.is_empty());
        let removed = alarms
            .apply(
                &mut batch,
                &request(AlarmAction::Deactivate, 7, AlarmType::Nospace),
            )
            .unwrap();
        assert_eq!(removed.alarms, raised.alarms);
        batch.commit().unwrap();
        assert_eq!(AlarmSet::load(&engine).unwrap(), AlarmSet::default());
    }
}
