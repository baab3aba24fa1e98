//! Building a step's request: rendering its templates over the flow's
//! values and the current code, checking where the URL points, and marking
//! every header sensitive.

use std::collections::BTreeMap;
use std::time::UNIX_EPOCH;

use otpilot_api::profile::Step;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use crate::error::FlowErrorKind;
use crate::executor::FlowRun;
use crate::template;
use crate::url_scope;

impl FlowRun<'_> {
    pub(crate) fn context(&self, code: Option<&SecretString>) -> minijinja::Value {
        let mut ctx: BTreeMap<String, minijinja::Value> = BTreeMap::new();
        for (k, v) in &self.engine.profile().spec().variables {
            ctx.insert(k.clone(), v.as_str().into());
        }
        for (k, v) in &self.inputs.variables {
            ctx.insert(k.clone(), v.as_str().into());
        }
        if let Some(u) = &self.inputs.username {
            ctx.insert("username".into(), u.as_str().into());
        }
        if let Some(p) = &self.inputs.password {
            ctx.insert("password".into(), p.expose_secret().into());
        }
        if let Some(k) = &self.inputs.api_key {
            ctx.insert("api_key".into(), k.expose_secret().into());
        }
        // A declared secret value the caller does not give is empty, so a
        // header carrying only it is left out (see `put` below).
        for name in &self.engine.profile().spec().secret_values {
            let value = self
                .inputs
                .secret_values
                .get(name)
                .map_or("", |v| v.expose_secret());
            ctx.insert(name.clone(), value.into());
        }
        if let Some(key) = self.totp_key() {
            ctx.insert(
                "totp_secret".into(),
                key.secret_base32().expose_secret().into(),
            );
        }
        if let Some(code) = code {
            ctx.insert("totp".into(), code.expose_secret().into());
        }
        if let Some(codes) = &self.state.recovery_codes {
            let list: Vec<String> = codes.iter().map(|c| c.expose_secret().to_owned()).collect();
            ctx.insert("recovery_codes".into(), minijinja::Value::from(list));
        }
        for (k, t) in &self.state.times {
            let secs = t
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            ctx.insert(k.clone(), secs.into());
        }
        for (k, v) in &self.state.values {
            ctx.insert(k.clone(), v.expose_secret().into());
        }
        minijinja::Value::from(ctx)
    }

    pub(crate) fn render(
        &self,
        field: String,
        source: &str,
        ctx: &minijinja::Value,
    ) -> Result<String, FlowErrorKind> {
        template::render(&self.engine.env, source, ctx).map_err(|e| FlowErrorKind::Render {
            field,
            message: self.scrubber.scrub(&e.message()),
        })
    }

    pub(crate) fn render_json(
        &self,
        field: &str,
        value: &Value,
        ctx: &minijinja::Value,
    ) -> Result<Value, FlowErrorKind> {
        Ok(match value {
            Value::String(s) => Value::String(self.render(field.to_owned(), s, ctx)?),
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| self.render_json(&format!("{field}[{i}]"), v, ctx))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| {
                        Ok((
                            k.clone(),
                            self.render_json(&format!("{field}.{k}"), v, ctx)?,
                        ))
                    })
                    .collect::<Result<_, FlowErrorKind>>()?,
            ),
            other => other.clone(),
        })
    }

    pub(crate) fn build_request(
        &self,
        step: &Step,
        code: Option<&SecretString>,
        totp_header: Option<&str>,
    ) -> Result<reqwest::Request, FlowErrorKind> {
        let at = format!("{}.steps[{}]", self.state.flow, self.state.next_step);
        let ctx = self.context(code);
        let path = self.render(format!("{at}.path"), &step.path, &ctx)?;
        let mut url = url::Url::parse(&format!("{}{path}", self.engine.base_url)).map_err(|e| {
            FlowErrorKind::InvalidRequest {
                field: format!("{at}.path"),
                message: e.to_string(),
            }
        })?;
        if let Some(why) = url_scope::escape_from(&self.engine.base, &url) {
            return Err(FlowErrorKind::InvalidRequest {
                field: format!("{at}.path"),
                message: format!("refused to send the request: {why}"),
            });
        }
        if !step.query.is_empty() {
            let mut pairs = Vec::new();
            for (k, v) in &step.query {
                pairs.push((k.clone(), self.render(format!("{at}.query.{k}"), v, &ctx)?));
            }
            url.query_pairs_mut().extend_pairs(pairs);
        }
        let mut headers = HeaderMap::new();
        let mut put = |field: String, name: &str, value: String| -> Result<(), FlowErrorKind> {
            // An empty header says nothing a vendor needs; a profile relies
            // on this to send an optional secret value only when given.
            if value.is_empty() {
                headers.remove(name);
                return Ok(());
            }
            let invalid = |what: &str| FlowErrorKind::InvalidRequest {
                field: field.clone(),
                message: format!("not a valid header {what}"),
            };
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid("name"))?;
            let mut value = HeaderValue::from_str(&value).map_err(|_| invalid("value"))?;
            value.set_sensitive(true);
            headers.insert(name, value);
            Ok(())
        };
        for (k, v) in &self.engine.profile().spec().headers {
            put(
                format!("headers.{k}"),
                k,
                self.render(format!("headers.{k}"), v, &ctx)?,
            )?;
        }
        for (k, v) in &step.headers {
            put(
                format!("{at}.headers.{k}"),
                k,
                self.render(format!("{at}.headers.{k}"), v, &ctx)?,
            )?;
        }
        if let (Some(name), Some(code)) = (totp_header, code) {
            put(
                format!("{at}.responses"),
                name,
                code.expose_secret().to_owned(),
            )?;
        }
        let method = match step.method {
            otpilot_api::profile::HttpMethod::Get => reqwest::Method::GET,
            otpilot_api::profile::HttpMethod::Post => reqwest::Method::POST,
            otpilot_api::profile::HttpMethod::Put => reqwest::Method::PUT,
            otpilot_api::profile::HttpMethod::Patch => reqwest::Method::PATCH,
            otpilot_api::profile::HttpMethod::Delete => reqwest::Method::DELETE,
        };
        let mut req = self.engine.client.request(method, url).headers(headers);
        if let Some(body) = &step.body {
            req = req.json(&self.render_json(&format!("{at}.body"), body, &ctx)?);
        } else if let Some(form) = &step.form {
            let mut fields = Vec::new();
            for (k, v) in form {
                fields.push((k.clone(), self.render(format!("{at}.form.{k}"), v, &ctx)?));
            }
            req = req.form(&fields);
        }
        req.build().map_err(|e| FlowErrorKind::InvalidRequest {
            field: at,
            message: self.scrubber.scrub(&e.without_url().to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use secrecy::{ExposeSecret, SecretString};

    use crate::error::FlowKind;
    use crate::executor::{Checkpoint, FlowRun};
    use crate::load::Profile;
    use crate::{Engine, HttpSettings, Inputs};

    const PROFILE: &str = r#"
variables: {org: acme}
headers: {X-Api-Key: "{{ api_key }}", Accept: application/json}
enroll:
  steps:
    - method: GET
      path: /secret
      extract:
        totp_secret: {pointer: /secret, as: base32Secret}
login:
  steps:
    - name: session
      method: GET
      path: /session
      extract:
        session: {pointer: /s}
    - name: login
      method: POST
      path: /orgs/{{ org | urlencode }}/users/{{ username | urlencode }}/login
      query: {next: "{{ username }}", flag: "a b"}
      headers: {accept: text/plain, Authorization: "Bearer {{ session }}"}
      body: {user: "{{ username }}", n: 7, nested: [{code: "{{ password }}"}], ok: true}
      extract:
        access_token: {pointer: /token}
    - name: form
      method: PUT
      path: /form
      form: {code: "{{ password }}", org: "{{ org }}"}
      extract:
        other: {pointer: /x}
"#;

    fn engine() -> Engine {
        let profile = Arc::new(Profile::from_yaml("request.yaml", PROFILE).expect("loads"));
        Engine::new(
            profile,
            "https://api.example/base/",
            HttpSettings::default(),
        )
        .expect("engine")
    }

    fn run<'e>(engine: &'e Engine, user: &str, step: usize) -> FlowRun<'e> {
        let inputs = Inputs {
            username: Some(user.into()),
            password: Some(SecretString::from("pw 1")),
            api_key: Some(SecretString::from("key-1")),
            ..Inputs::default()
        };
        let checkpoint = Checkpoint {
            flow: FlowKind::Login,
            next_step: step,
            values: BTreeMap::from([("session".to_owned(), SecretString::from("s-1"))]),
            totp: None,
            recovery_codes: None,
            times: BTreeMap::new(),
            last_code_step: None,
        };
        FlowRun::new(engine, &inputs, checkpoint)
    }

    fn header(req: &reqwest::Request, name: &str) -> Vec<String> {
        req.headers()
            .get_all(name)
            .iter()
            .map(|v| v.to_str().expect("ascii").to_owned())
            .collect()
    }

    #[test]
    fn a_request_is_the_base_url_the_rendered_path_and_an_encoded_query() {
        let engine = engine();
        let run = run(&engine, "a/b c", 1);
        let step = &engine.profile().flow(FlowKind::Login).expect("login").steps[1];
        let req = run.build_request(step, None, None).expect("request");
        assert_eq!(req.method(), reqwest::Method::POST);
        assert_eq!(
            req.url().as_str(),
            "https://api.example/base/orgs/acme/users/a%2Fb%20c/login?flag=a+b&next=a%2Fb+c"
        );
    }

    #[test]
    fn step_headers_replace_profile_headers_and_every_header_is_sensitive() {
        let engine = engine();
        let run = run(&engine, "bot", 1);
        let step = &engine.profile().flow(FlowKind::Login).expect("login").steps[1];
        let req = run.build_request(step, None, None).expect("request");
        assert_eq!(
            header(&req, "accept"),
            vec!["text/plain"],
            "case-insensitive"
        );
        assert_eq!(header(&req, "x-api-key"), vec!["key-1"]);
        assert_eq!(header(&req, "authorization"), vec!["Bearer s-1"]);
        for name in ["accept", "x-api-key", "authorization"] {
            let value = req.headers().get(name).expect(name);
            assert!(value.is_sensitive(), "{name} is kept out of debug output");
        }
    }

    #[test]
    fn a_code_asked_for_in_a_header_is_added() {
        let engine = engine();
        let run = run(&engine, "bot", 1);
        let step = &engine.profile().flow(FlowKind::Login).expect("login").steps[1];
        let code = SecretString::from("123456");
        let req = run
            .build_request(step, Some(&code), Some("X-OTP"))
            .expect("request");
        assert_eq!(header(&req, "x-otp"), vec![code.expose_secret()]);
    }

    #[test]
    fn json_bodies_render_strings_at_any_depth_and_keep_other_values() {
        let engine = engine();
        let run = run(&engine, "bot", 1);
        let step = &engine.profile().flow(FlowKind::Login).expect("login").steps[1];
        let req = run.build_request(step, None, None).expect("request");
        let body: serde_json::Value =
            serde_json::from_slice(req.body().and_then(|b| b.as_bytes()).expect("body"))
                .expect("json");
        assert_eq!(
            body,
            serde_json::json!({"user": "bot", "n": 7, "nested": [{"code": "pw 1"}], "ok": true})
        );
    }

    #[test]
    fn forms_are_url_encoded() {
        let engine = engine();
        let run = run(&engine, "bot", 2);
        let step = &engine.profile().flow(FlowKind::Login).expect("login").steps[2];
        let req = run.build_request(step, None, None).expect("request");
        let body = req.body().and_then(|b| b.as_bytes()).expect("body");
        assert_eq!(
            std::str::from_utf8(body).expect("utf8"),
            "code=pw+1&org=acme"
        );
        assert_eq!(
            header(&req, "content-type"),
            vec!["application/x-www-form-urlencoded"]
        );
    }

    #[test]
    fn conduit_sends_its_client_headers_only_when_given() {
        let profile = crate::builtin::get("conduit").expect("built in");
        let engine =
            Engine::new(profile, "https://api.example", HttpSettings::default()).expect("engine");
        let step = &engine.profile().flow(FlowKind::Login).expect("login").steps[0];
        let checkpoint = || Checkpoint {
            flow: FlowKind::Login,
            next_step: 0,
            values: BTreeMap::new(),
            totp: None,
            recovery_codes: None,
            times: BTreeMap::new(),
            last_code_step: None,
        };
        let bare = Inputs {
            username: Some("bot".into()),
            password: Some(SecretString::from("pw")),
            ..Inputs::default()
        };
        let req = FlowRun::new(&engine, &bare, checkpoint())
            .build_request(step, None, None)
            .expect("request");
        assert!(header(&req, "clientid").is_empty(), "no client id given");
        assert!(header(&req, "clientsecret").is_empty(), "no secret given");

        let validated = Inputs {
            variables: BTreeMap::from([("client_id".to_owned(), "app-1".to_owned())]),
            secret_values: BTreeMap::from([(
                "client_secret".to_owned(),
                SecretString::from("CLIENT-SECRET-1"),
            )]),
            ..bare
        };
        let req = FlowRun::new(&engine, &validated, checkpoint())
            .build_request(step, None, None)
            .expect("request");
        assert_eq!(header(&req, "clientid"), vec!["app-1"]);
        assert_eq!(header(&req, "clientsecret"), vec!["CLIENT-SECRET-1"]);
        let value = req.headers().get("clientsecret").expect("sent");
        assert!(value.is_sensitive());
        assert!(!format!("{validated:?}").contains("CLIENT-SECRET-1"));
    }

    #[test]
    fn a_secret_value_is_scrubbed_from_errors() {
        let profile = Arc::new(
            Profile::from_yaml(
                "s.yaml",
                &format!("secretValues: [client_secret]\n{}", PROFILE),
            )
            .expect("loads"),
        );
        let engine =
            Engine::new(profile, "https://api.example", HttpSettings::default()).expect("engine");
        let inputs = Inputs {
            username: Some("bot".into()),
            secret_values: BTreeMap::from([(
                "client_secret".to_owned(),
                SecretString::from("CLIENT-SECRET-2"),
            )]),
            ..Inputs::default()
        };
        let run = FlowRun::new(
            &engine,
            &inputs,
            Checkpoint {
                flow: FlowKind::Login,
                next_step: 0,
                values: BTreeMap::new(),
                totp: None,
                recovery_codes: None,
                times: BTreeMap::new(),
                last_code_step: None,
            },
        );
        assert_eq!(
            run.scrubber.scrub("vendor said CLIENT-SECRET-2 is wrong"),
            "vendor said *** is wrong"
        );
    }

    #[test]
    fn undeclared_secret_values_are_named_for_the_caller_to_refuse() {
        let conduit = crate::builtin::get("conduit").expect("built in");
        assert_eq!(
            conduit.undeclared_secret_value(["client_secret"].into_iter()),
            None
        );
        assert_eq!(
            conduit
                .undeclared_secret_value(["client_secret", "clientsecret"].into_iter())
                .as_deref(),
            Some("the profile has no secret value named 'clientsecret' (it uses client_secret)")
        );
        let goaxr = crate::builtin::get("goaxr").expect("built in");
        assert_eq!(
            goaxr.undeclared_secret_value(["x"].into_iter()).as_deref(),
            Some("the profile has no secret value named 'x' (it uses none)")
        );
    }

    #[test]
    fn a_header_value_that_cannot_be_sent_is_a_profile_error_without_the_value() {
        let engine = engine();
        let mut run = run(&engine, "bot", 1);
        run.state
            .values
            .insert("session".into(), SecretString::from("bad\nSECRET"));
        let step = &engine.profile().flow(FlowKind::Login).expect("login").steps[1];
        let err = run.build_request(step, None, None).expect_err("newline");
        assert_eq!(err.category(), "ProfileError");
        assert!(!err.to_string().contains("SECRET"), "{err}");
    }
}
