//! Tokens: what a [`Grant`] means under [`AuthMode`] at `join` and at `updateToken`. The
//! deadlines a token sets (prompt, expiry) are kept in `deadlines`.

use super::state::TokenState;
use super::{ConnId, Engine, Grant, Handled};
use crate::config::AuthMode;
use crate::ids::Entropy;
use rtcroom_protocol::{Join, Refusal, RespUpdateToken, ResultCode, ServerMsg, UpdateToken};

/// A grant that names the app `app_id` (and, when it names a uid, `uid`), as a token state.
fn accept(grant: &Grant, app_id: &str, uid: Option<&str>) -> Result<TokenState, Refusal> {
    let invalid = |detail: String| Refusal::new(ResultCode::TokenInvalid, detail);
    match grant {
        Grant::Unchecked => Err(invalid("the join carries no token".into())),
        Grant::Invalid(why) => Err(invalid(why.clone())),
        Grant::Valid {
            app_id: token_app,
            uid: token_uid,
            expires_at,
        } => {
            if token_app != app_id {
                return Err(invalid(format!(
                    "the token is for app {token_app}, not {app_id}"
                )));
            }
            if let Some(tu) = token_uid
                && uid.is_none_or(|u| u != tu)
            {
                return Err(invalid(format!("the token is for uid {tu}")));
            }
            // Converted to the monotonic clock by the engine (`on_clock`).
            Ok(TokenState {
                expires_at: *expires_at,
                expires_wall: *expires_at,
                prompted: false,
            })
        }
    }
}

impl<E: Entropy> Engine<E> {
    /// The token state a join brings: none when tokens are not required.
    pub(super) fn check_grant(
        &self,
        j: &Join,
        grant: &Grant,
    ) -> Result<Option<TokenState>, Refusal> {
        if self.cfg.auth == AuthMode::Open {
            return Ok(None);
        }
        let uid = j.uid.as_ref().map(|u| u.key());
        accept(grant, &j.app_id, uid).map(|t| Some(self.on_clock(t)))
    }

    /// A token's expiry on the monotonic clock: what is left of it now, whatever the wall
    /// clock does later.
    fn on_clock(&self, t: TokenState) -> TokenState {
        TokenState {
            expires_at: self.mono_of(t.expires_wall),
            ..t
        }
    }

    pub(super) fn update_token(&mut self, conn: ConnId, r: &UpdateToken, grant: Grant) -> Handled {
        let seat = self.speaker(conn, &r.id)?;
        let expire_at = if let AuthMode::Required { .. } = self.cfg.auth {
            // A refresh must come with a token; what is missing is said in plain words.
            if grant == Grant::Unchecked {
                return Err(Refusal::new(ResultCode::TokenInvalid, "no token"));
            }
            let (room, m) = (self.room(seat), self.member(seat));
            let token = self.on_clock(accept(&grant, &room.app_id, Some(m.uid.key()))?);
            self.member_mut(seat).token = Some(token);
            self.touch(seat.room);
            token.expires_wall.as_secs()
        } else {
            0
        };
        let resp = ServerMsg::RespUpdateToken(RespUpdateToken {
            result: ResultCode::Ok,
            desc: ResultCode::Ok.desc().to_owned(),
            expire_at,
        });
        self.send(conn, resp);
        self.schedule(conn);
        Ok(())
    }
}
