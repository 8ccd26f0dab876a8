//! `connected_apps.provider_presets`: the provider catalogue the "New Connected App" page offers.

use actix_web::HttpResponse;
use serde_json::{Map, Value};

use super::call::Call;
use crate::error::AppError;
use crate::oauth::presets::{self, PRESETS};

/// Every preset (parameters at their defaults), or with `preset=<id>` that one, its
/// parameters filled from the arguments. Any logged-in user may read them.
pub async fn provider_presets(name: &str, call: Call) -> Result<HttpResponse, AppError> {
    call.require_login(name)?;
    if let Some(id) = call.args.str("preset").filter(|s| !s.is_empty()) {
        let preset =
            presets::find(&id).ok_or_else(|| AppError::not_found("Provider Preset", &id))?;
        return Ok(call.reply(preset.to_json(&call.args.map)?));
    }
    let none = Map::new();
    let all = PRESETS
        .iter()
        .map(|p| p.to_json(&none))
        .collect::<Result<Vec<Value>, AppError>>()?;
    Ok(call.reply(all))
}
