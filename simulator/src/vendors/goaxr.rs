//! stub
use crate::state::SharedState;
use axum::Router;
/// Routes.
pub fn routes(state: SharedState) -> Router {
    Router::new().with_state(state)
}
