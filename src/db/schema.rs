//! Diesel table definitions for Frappe's tables (the columns the service uses) and its own.

diesel::table! {
    #[sql_name = "tabConnected App"]
    connected_app (name) {
        name -> Text,
        creation -> Nullable<Timestamp>,
        modified -> Nullable<Timestamp>,
        modified_by -> Nullable<Text>,
        owner -> Nullable<Text>,
        docstatus -> Integer,
        idx -> Integer,
        provider_name -> Nullable<Text>,
        openid_configuration -> Nullable<Text>,
        client_id -> Nullable<Text>,
        redirect_uri -> Nullable<Text>,
        client_secret -> Nullable<Text>,
        authorization_uri -> Nullable<Text>,
        token_uri -> Nullable<Text>,
        revocation_uri -> Nullable<Text>,
        userinfo_uri -> Nullable<Text>,
        introspection_uri -> Nullable<Text>,
        _user_tags -> Nullable<Text>,
        _comments -> Nullable<Text>,
        _assign -> Nullable<Text>,
        _liked_by -> Nullable<Text>,
    }
}

diesel::table! {
    #[sql_name = "tabToken Cache"]
    token_cache (name) {
        name -> Text,
        creation -> Nullable<Timestamp>,
        modified -> Nullable<Timestamp>,
        modified_by -> Nullable<Text>,
        owner -> Nullable<Text>,
        docstatus -> Integer,
        idx -> Integer,
        user -> Nullable<Text>,
        connected_app -> Nullable<Text>,
        provider_name -> Nullable<Text>,
        access_token -> Nullable<Text>,
        refresh_token -> Nullable<Text>,
        expires_in -> Integer,
        state -> Nullable<Text>,
        success_uri -> Nullable<Text>,
        token_type -> Nullable<Text>,
        _user_tags -> Nullable<Text>,
        _comments -> Nullable<Text>,
        _assign -> Nullable<Text>,
        _liked_by -> Nullable<Text>,
    }
}

diesel::table! {
    #[sql_name = "tabOAuth Scope"]
    oauth_scope (name) {
        name -> Text,
        creation -> Nullable<Timestamp>,
        modified -> Nullable<Timestamp>,
        modified_by -> Nullable<Text>,
        owner -> Nullable<Text>,
        docstatus -> Integer,
        idx -> Integer,
        scope -> Nullable<Text>,
        parent -> Nullable<Text>,
        parentfield -> Nullable<Text>,
        parenttype -> Nullable<Text>,
    }
}

diesel::table! {
    #[sql_name = "tabQuery Parameters"]
    query_parameters (name) {
        name -> Text,
        creation -> Nullable<Timestamp>,
        modified -> Nullable<Timestamp>,
        modified_by -> Nullable<Text>,
        owner -> Nullable<Text>,
        docstatus -> Integer,
        idx -> Integer,
        key -> Nullable<Text>,
        value -> Nullable<Text>,
        parent -> Nullable<Text>,
        parentfield -> Nullable<Text>,
        parenttype -> Nullable<Text>,
    }
}

diesel::table! {
    #[sql_name = "__Auth"]
    auth (doctype, name, fieldname) {
        doctype -> Text,
        name -> Text,
        fieldname -> Text,
        password -> Text,
        encrypted -> Integer,
    }
}

diesel::table! {
    #[sql_name = "tabUser"]
    user (name) {
        name -> Text,
        creation -> Nullable<Timestamp>,
        modified -> Nullable<Timestamp>,
        modified_by -> Nullable<Text>,
        owner -> Nullable<Text>,
        docstatus -> Integer,
        idx -> Integer,
        enabled -> Integer,
        email -> Nullable<Text>,
        first_name -> Nullable<Text>,
        last_name -> Nullable<Text>,
        full_name -> Nullable<Text>,
        user_type -> Nullable<Text>,
        user_image -> Nullable<Text>,
        api_key -> Nullable<Text>,
        api_secret -> Nullable<Text>,
    }
}

diesel::table! {
    #[sql_name = "tabHas Role"]
    has_role (name) {
        name -> Text,
        creation -> Nullable<Timestamp>,
        modified -> Nullable<Timestamp>,
        modified_by -> Nullable<Text>,
        owner -> Nullable<Text>,
        docstatus -> Integer,
        idx -> Integer,
        role -> Nullable<Text>,
        parent -> Nullable<Text>,
        parentfield -> Nullable<Text>,
        parenttype -> Nullable<Text>,
    }
}

diesel::table! {
    // tabSessions has no primary key in Frappe; diesel needs one, and `sid` is unique in practice.
    #[sql_name = "tabSessions"]
    sessions (sid) {
        user -> Nullable<Text>,
        sid -> Text,
        sessiondata -> Nullable<Text>,
        ipaddress -> Nullable<Text>,
        lastupdate -> Nullable<Timestamp>,
        status -> Nullable<Text>,
    }
}

diesel::table! {
    #[sql_name = "tabSingles"]
    singles (doctype, field) {
        doctype -> Text,
        field -> Text,
        value -> Nullable<Text>,
    }
}

diesel::table! {
    ca_app_settings (connected_app) {
        connected_app -> Text,
        pkce -> Integer,
        keep_warm -> Integer,
        client_auth -> Nullable<Text>,
    }
}

diesel::table! {
    ca_token_extra (token_cache) {
        token_cache -> Text,
        extra -> Nullable<Text>,
        never_expires -> Integer,
    }
}

diesel::table! {
    ca_job_lease (job) {
        job -> Text,
        owner -> Text,
        lease_until -> Timestamp,
    }
}

diesel::table! {
    ca_refresh_health (token_cache) {
        token_cache -> Text,
        last_error -> Text,
        failing_since -> Timestamp,
        last_failure_at -> Timestamp,
        failures -> Integer,
    }
}

diesel::table! {
    ca_token_state (token_cache) {
        token_cache -> Text,
        code_verifier -> Nullable<Text>,
        state_expires_at -> Nullable<Timestamp>,
        received_at -> Nullable<Timestamp>,
        needs_reconnect -> Integer,
        refresh_lease_until -> Nullable<Timestamp>,
        refresh_lease_owner -> Nullable<Text>,
    }
}

diesel::table! {
    ca_login_attempts (attempt_key) {
        attempt_key -> Text,
        failures -> Integer,
        first_failure -> Nullable<Timestamp>,
        locked_until -> Nullable<Timestamp>,
    }
}

diesel::table! {
    #[sql_name = "tabVersion"]
    version (name) {
        name -> Text,
        creation -> Nullable<Timestamp>,
        modified -> Nullable<Timestamp>,
        modified_by -> Nullable<Text>,
        owner -> Nullable<Text>,
        docstatus -> Integer,
        idx -> Integer,
        ref_doctype -> Nullable<Text>,
        docname -> Nullable<Text>,
        data -> Nullable<Text>,
    }
}
