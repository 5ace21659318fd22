//! The pure part of `method` rollouts (SPEC §8, §13): how long a call may
//! take, and how its end, which the runner feeds back, becomes a decision.
//! A 2xx answer succeeds; another status, no connection (404) or no answer
//! in time (504, `timed_out`) fails the device.

use std::time::Duration;

use super::decide::Decision;
use super::model::{DeviceState, Kind, Response, Rollout};
use super::policy::Policy;
use crate::broker::handlers::methods::Called;

/// The longest a direct method is waited for (SPEC §13's longest timeout).
const MAX_CALL: Duration = Duration::from_secs(300);

/// How long a method rollout's call may go unanswered: `device_timeout`,
/// at most [`MAX_CALL`].
pub fn call_timeout(p: &Policy) -> Duration {
    p.device_timeout.min(MAX_CALL)
}

/// After the call's own timeout, the time its answer (a 504 at worst) has
/// to come back before the device counts as timed out anyway.
const CALL_GRACE: Duration = Duration::from_secs(5);

/// When a device in flight times out if its call never ends (the decision's
/// safety net; the call's 504 comes first).
pub fn answer_deadline(p: &Policy) -> Duration {
    call_timeout(p) + CALL_GRACE
}

/// A method rollout's call to `name` ended (the runner feeds this back): a
/// 2xx answer succeeds, anything else fails; `None` unless the device
/// waits for its call.
pub fn answered(r: &Rollout, name: &str, called: &Called) -> Option<Decision> {
    r.device(name).filter(|d| d.state.in_flight())?;
    let failed = |status: u16, message: String| {
        let state = if status == 504 {
            DeviceState::TimedOut
        } else {
            DeviceState::Failed
        };
        let response = Response {
            status,
            payload: None,
        };
        (state, response, message)
    };
    let (state, response, message) = match called {
        Called::Answered { status, payload } => {
            let response = Response {
                status: *status,
                payload: Some(payload.clone()),
            };
            if (200..300).contains(status) {
                (
                    DeviceState::Succeeded,
                    response,
                    format!("answered {status}"),
                )
            } else {
                let message = format!("answered {status}: expected a 2xx status");
                (DeviceState::Failed, response, message)
            }
        }
        Called::NotConnected => failed(
            404,
            "not connected, or not subscribed to direct methods".into(),
        ),
        Called::TimedOut => failed(
            504,
            format!(
                "no answer within {}",
                crate::duration::format(call_timeout(&r.policy))
            ),
        ),
        Called::TooLarge => failed(413, "the payload is over 128 KB".into()),
    };
    Some(Decision::Answered {
        name: name.to_string(),
        state,
        response,
        message,
    })
}

/// A method rollout's devices whose call was in flight when ztpd stopped:
/// the answer is lost, and the method is not called twice, so they fail.
pub fn calls_lost(r: &Rollout) -> Vec<Decision> {
    if r.kind != Kind::Method || !r.state.active() {
        return Vec::new();
    }
    r.devices
        .iter()
        .filter(|d| d.state.in_flight())
        .map(|d| Decision::Device {
            name: d.name.clone(),
            state: DeviceState::Failed,
            stage: None,
            version: None,
            message: Some(
                "ztpd stopped while its method call was in flight: the answer is lost \
                 (a method is never called twice)"
                    .into(),
            ),
        })
        .collect()
}
