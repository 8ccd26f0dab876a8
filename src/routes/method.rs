//! `/api/method/<dotted.path>`: Frappe's whitelisted functions, dispatched by name. A new
//! method goes into [`METHODS`] and `run`'s table; the handlers live in their family's file.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::call::Call;
use super::{auth, client, desk, oauth, presets};
use crate::auth::CurrentUser;
use crate::error::AppError;
use crate::frappe::args::Args;
use crate::state::AppState;

pub async fn dispatch(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    user: CurrentUser,
) -> Result<HttpResponse, AppError> {
    let name = path.into_inner();
    let (args, _) = Args::parse(&req, &body)?;
    let call = Call {
        state,
        user,
        args,
        method: req.method().clone(),
        req,
        v2: false,
    };
    run(&name, call).await
}

/// Every method name `run` dispatches: the closed list the API spec is checked against.
pub const METHODS: &[&str] = &[
    "ping",
    "login",
    "logout",
    "frappe.auth.get_logged_user",
    "frappe.client.get_list",
    "frappe.client.get",
    "frappe.client.get_count",
    "frappe.client.get_value",
    "frappe.client.insert",
    "frappe.client.set_value",
    "frappe.client.delete",
    "frappe.client.rename_doc",
    "frappe.client.bulk_update",
    "frappe.client.get_single_value",
    "frappe.client.validate_link",
    "frappe.client.get_password",
    "run_doc_method",
    "runserverobj",
    "frappe.desk.form.load.getdoc",
    "frappe.desk.reportview.get",
    "frappe.desk.reportview.get_count",
    "frappe.desk.form.save.savedocs",
    "frappe.integrations.doctype.connected_app.connected_app.has_token",
    "Connected App/has_token",
    "connected_apps.get_access_token",
    "connected_apps.get_backend_app_token",
    "connected_apps.get_auth_header",
    "connected_apps.app_settings",
    "connected_apps.connection_status",
    "connected_apps.provider_presets",
    "frappe.integrations.doctype.connected_app.connected_app.callback",
];

/// Runs a method by its dotted name (shared by /api/method and /api/v2/method). A name
/// missing from [`METHODS`] is unknown even if an arm below matches it.
pub async fn run(name: &str, call: Call) -> Result<HttpResponse, AppError> {
    if !METHODS.contains(&name) {
        return Err(unknown_method(name, &call.user));
    }
    match name {
        "ping" => Ok(call.reply(json!("pong"))),
        "login" => auth::login(call).await,
        "logout" => auth::logout(call).await,
        "frappe.auth.get_logged_user" => {
            call.require_login(name)?;
            Ok(call.reply(json!(call.user.name)))
        }
        "frappe.client.get_list" => client::get_list(name, call).await,
        "frappe.client.get" => client::get(name, call).await,
        "frappe.client.get_count" => client::get_count(name, call).await,
        "frappe.client.get_value" => client::get_value(name, call).await,
        "frappe.client.insert" => client::insert(name, call).await,
        "frappe.client.set_value" => client::set_value(name, call).await,
        "frappe.client.delete" => client::delete(name, call).await,
        "frappe.client.rename_doc" => client::rename_doc(name, call).await,
        "frappe.client.bulk_update" => client::bulk_update(name, call).await,
        "frappe.client.get_single_value" => client::get_single_value(name, call).await,
        "frappe.client.validate_link" => client::validate_link(name, call).await,
        "frappe.client.get_password" => client::get_password(name, call).await,
        "run_doc_method" | "runserverobj" => oauth::run_doc_method(name, call).await,
        "frappe.desk.form.load.getdoc" => desk::getdoc(name, call).await,
        "frappe.desk.reportview.get" => desk::reportview_get(name, call).await,
        "frappe.desk.reportview.get_count" => client::get_count(name, call).await,
        "frappe.desk.form.save.savedocs" => desk::savedocs(name, call).await,
        "frappe.integrations.doctype.connected_app.connected_app.has_token"
        | "Connected App/has_token" => oauth::has_token(name, call).await,
        "connected_apps.get_access_token" => oauth::get_access_token(name, call).await,
        "connected_apps.get_backend_app_token" => oauth::get_backend_app_token(name, call).await,
        "connected_apps.get_auth_header" => oauth::get_auth_header(name, call).await,
        "connected_apps.app_settings" => oauth::app_settings(name, call).await,
        "connected_apps.connection_status" => oauth::connection_status(name, call).await,
        "connected_apps.provider_presets" => presets::provider_presets(name, call).await,
        "frappe.integrations.doctype.connected_app.connected_app.callback" => {
            Err(AppError::validation("Invalid Parameters."))
        }
        other => Err(unknown_method(other, &call.user)),
    }
}

/// Frappe's answer to a method it cannot run: a Guest or an unknown module gets "not
/// whitelisted"; a missing function of a known module gets "Failed to get method …".
fn unknown_method(name: &str, user: &CurrentUser) -> AppError {
    if user.is_guest() {
        return AppError::not_whitelisted(name);
    }
    const MODULES: [&str; 3] = ["frappe.client", "frappe.auth", "frappe.desk.reportview"];
    if let Some((module, attr)) = name.rsplit_once('.') {
        if MODULES.contains(&module) {
            return AppError::validation(format!(
                "Failed to get method for command {name} with module '{module}' has no attribute '{attr}'"
            ));
        }
    }
    AppError::not_whitelisted(name)
}
