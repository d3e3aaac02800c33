//! The compose deployment, tested without a Docker engine (none runs here):
//!
//! - every `TICKETING_*` variable a service is given is a key the services
//!   actually read (`Settings`), and the gateway is given exactly the
//!   template's placeholders;
//! - every service it depends on exists, has a health check and a restart
//!   policy, and only the gateway publishes a port (Grafana, opt in, on the
//!   host's loopback);
//! - Prometheus scrapes every service that serves `/metrics`, and every
//!   metric the Grafana dashboard queries is one the services record (and
//!   every recorded metric is on the dashboard);
//! - no secret is written in the file: passwords come from `${...}`;
//! - the gateway template, filled as the nginx image fills it, passes
//!   `nginx -t` with the compose service names resolving (a private
//!   `/etc/hosts` in a mount namespace);
//! - `deploy.sh` deploys, records the release, and rolls back to the
//!   previous one when the new one stays unhealthy (a fake `docker` on
//!   `PATH` plays the engine).

// Test code: a failed expectation must panic the test.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use ticketing_app::settings::Settings;
use yaml_rust2::{Yaml, YamlLoader};

fn compose_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../compose")
}

fn load_compose() -> Yaml {
    let text = std::fs::read_to_string(compose_dir().join("docker-compose.yml")).unwrap();
    let mut docs = YamlLoader::load_from_str(&text).unwrap();
    merge_keys(docs.remove(0))
}

/// Resolves YAML merge keys (`<<: *anchor`), which the parser leaves as a
/// plain `<<` entry; explicit keys win over merged ones, as in Compose.
fn merge_keys(y: Yaml) -> Yaml {
    match y {
        Yaml::Hash(h) => {
            let mut out = yaml_rust2::yaml::Hash::new();
            let merge = Yaml::String("<<".into());
            if let Some(Yaml::Hash(base)) = h.get(&merge).cloned().map(merge_keys) {
                for (k, v) in base {
                    out.insert(k, v);
                }
            }
            for (k, v) in h {
                if k != merge {
                    out.insert(k, merge_keys(v));
                }
            }
            Yaml::Hash(out)
        }
        Yaml::Array(a) => Yaml::Array(a.into_iter().map(merge_keys).collect()),
        other => other,
    }
}

fn services(doc: &Yaml) -> Vec<(String, Yaml)> {
    doc["services"]
        .as_hash()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.as_str().unwrap().to_owned(), v.clone()))
        .collect()
}

/// One service's definition (merge keys resolved).
fn service(doc: &Yaml, name: &str) -> Yaml {
    services(doc)
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no service {name}"))
        .1
}

fn environment(service: &Yaml) -> Vec<(String, String)> {
    match service["environment"].as_hash() {
        Some(h) => h
            .iter()
            .map(|(k, v)| {
                let value = match v {
                    Yaml::String(s) => s.clone(),
                    Yaml::Integer(i) => i.to_string(),
                    Yaml::Boolean(b) => b.to_string(),
                    other => panic!("unexpected env value {other:?}"),
                };
                (k.as_str().unwrap().to_owned(), value)
            })
            .collect(),
        None => Vec::new(),
    }
}

/// Whether `TICKETING_A__B_C` names a key of the settings (`a.b_c`).
fn settings_has(var: &str) -> bool {
    let Some(path) = var.strip_prefix("TICKETING_") else {
        return false;
    };
    let mut node = serde_json::to_value(Settings::default()).unwrap();
    for part in path.split("__") {
        match node.get(part.to_lowercase()) {
            Some(next) => node = next.clone(),
            None => return false,
        }
    }
    true
}

fn template() -> String {
    std::fs::read_to_string(compose_dir().join("nginx/gateway.conf.template")).unwrap()
}

fn placeholders(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("${") {
        let tail = &rest[at + 2..];
        let end = tail.find('}').unwrap();
        out.insert(tail[..end].to_owned());
        rest = &tail[end..];
    }
    out
}

#[test]
fn every_service_variable_is_a_key_the_services_read() {
    assert!(
        settings_has("TICKETING_DATABASE__URL"),
        "the check itself works"
    );
    assert!(!settings_has("TICKETING_DATABASE__URI"));
    let doc = load_compose();
    let mut seen = 0;
    for (name, svc) in services(&doc) {
        for (key, _) in environment(&svc) {
            if key.starts_with("TICKETING_") {
                assert!(
                    settings_has(&key),
                    "{name}: {key} is not a configuration key"
                );
                seen += 1;
            }
        }
    }
    assert!(
        seen >= 20,
        "the four services' variables were read ({seen})"
    );
}

#[test]
fn the_gateway_gets_exactly_the_templates_placeholders() {
    let gateway = service(&load_compose(), "gateway");
    let given: BTreeSet<String> = environment(&gateway).into_iter().map(|(k, _)| k).collect();
    let wanted = placeholders(&template());
    assert_eq!(given, wanted);
    let mount = gateway["volumes"][0].as_str().unwrap();
    assert_eq!(
        mount, "./nginx/gateway.conf.template:/etc/nginx/templates/default.conf.template:ro",
        "the local stack's template, filled by the nginx image"
    );
}

/// The gateway's own nginx.conf replaces the image's: it still takes the
/// filled template (conf.d), and it has room for a stampede's connections
/// (two per proxied request) within the container's descriptor limit.
#[test]
fn the_gateway_has_connections_for_a_stampede() {
    let gateway = service(&load_compose(), "gateway");
    assert_eq!(
        gateway["volumes"][1].as_str(),
        Some("./nginx/nginx.conf:/etc/nginx/nginx.conf:ro")
    );
    let text = std::fs::read_to_string(compose_dir().join("nginx/nginx.conf")).unwrap();
    // The directives, without the comments (which name them too).
    let conf: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    let number_after = |key: &str| -> u64 {
        let rest = &conf[conf.find(key).unwrap_or_else(|| panic!("{key} set")) + key.len()..];
        rest.trim_start()
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{key} is a number"))
    };
    let connections = number_after("worker_connections");
    assert!(connections >= 8_192, "{connections}");
    assert!(conf.contains("include /etc/nginx/conf.d/*.conf;"));
    let nofile = gateway["ulimits"]["nofile"]["soft"].as_i64().unwrap() as u64;
    assert!(number_after("worker_rlimit_nofile") <= nofile);
    assert!(
        nofile >= 2 * connections,
        "{nofile} descriptors for {connections} connections"
    );
}

#[test]
fn dependencies_exist_every_service_is_checked_and_only_the_gateway_is_published() {
    let doc = load_compose();
    let all = services(&doc);
    let names: BTreeSet<&str> = all.iter().map(|(n, _)| n.as_str()).collect();
    for want in [
        "redis",
        "kafka",
        "postgres",
        "catalog",
        "reservation",
        "order",
        "payment",
        "gateway",
    ] {
        assert!(names.contains(want), "{want} missing");
    }
    for (name, svc) in &all {
        if let Some(deps) = svc["depends_on"].as_hash() {
            for (dep, how) in deps {
                let dep = dep.as_str().unwrap();
                assert!(names.contains(dep), "{name} depends on unknown {dep}");
                assert_eq!(
                    how["condition"].as_str(),
                    Some("service_healthy"),
                    "{name} → {dep}"
                );
            }
        }
        assert!(
            !svc["healthcheck"]["test"].is_badvalue(),
            "{name} has no health check"
        );
        assert_eq!(svc["restart"].as_str(), Some("unless-stopped"), "{name}");
        // The gateway is published; an opt-in observability service only
        // on the host's loopback (reached through an SSH tunnel).
        if let Some(ports) = svc["ports"].as_vec() {
            let opt_in = svc["profiles"]
                .as_vec()
                .is_some_and(|p| p.iter().any(|p| p.as_str() == Some("observability")));
            for port in ports {
                let port = port.as_str().unwrap();
                assert!(
                    name == "gateway" || (opt_in && port.starts_with("127.0.0.1:")),
                    "{name} publishes {port}"
                );
            }
        }
    }
    for (name, replicas) in [("reservation", 2), ("order", 2)] {
        assert_eq!(
            service(&doc, name)["deploy"]["replicas"].as_i64(),
            Some(replicas)
        );
    }
    // Redis keeps every acknowledged write (the brief's durability model).
    let redis = service(&doc, "redis");
    let cmd: Vec<&str> = redis["command"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(cmd.windows(2).any(|w| w == ["--appendonly", "yes"]));
}

#[test]
fn no_secret_is_committed() {
    let doc = load_compose();
    for (name, svc) in services(&doc) {
        for (key, value) in environment(&svc) {
            let secretive = ["PASSWORD", "SECRET", "TOKEN"]
                .iter()
                .any(|s| key.contains(s));
            if secretive {
                assert!(value.starts_with("${"), "{name}: {key} is a literal");
            }
            // user:password@ in a URL must be a reference, not a literal.
            if let Some((userinfo, _)) = value.split("://").nth(1).and_then(|r| r.split_once('@'))
                && let Some((_, password)) = userinfo.split_once(':')
            {
                assert!(
                    password.starts_with("${"),
                    "{name}: {key} has a literal password"
                );
            }
        }
    }
    let example = std::fs::read_to_string(compose_dir().join(".env.example")).unwrap();
    for line in example
        .lines()
        .filter(|l| l.contains("PASSWORD") || l.contains("TOKEN"))
    {
        if !line.starts_with('#') {
            assert!(
                line.ends_with('='),
                "the example leaves secrets empty: {line}"
            );
        }
    }
}

#[test]
fn the_filled_gateway_template_passes_nginx_t_with_the_compose_names() {
    let nginx = ticketing_testkit::find_program("nginx", &[PathBuf::from("/usr/sbin")])
        .expect("nginx not found: `apt-get install nginx` (ci/test does)");
    let gateway = service(&load_compose(), "gateway");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // What the nginx image's envsubst does with the gateway's environment.
    let mut conf = template();
    for (k, v) in environment(&gateway) {
        conf = conf.replace(&format!("${{{k}}}"), &v);
    }
    assert!(
        placeholders(&conf)
            .iter()
            .all(|p| !p.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
    );
    let isolated = Command::new("unshare")
        .args(["-m", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !isolated {
        // No mount namespace here: resolve the names by rewriting them.
        for name in [
            "catalog",
            "reservation",
            "order",
            "payment",
            "queue",
            "users",
            "console",
        ] {
            conf = conf.replace(&format!("server {name}:"), "server 127.0.0.1:");
        }
    }
    std::fs::write(d.join("default.conf"), &conf).unwrap();
    std::fs::write(
        d.join("nginx.conf"),
        format!(
            "pid {0}/nginx.pid;\nerror_log stderr;\nevents {{}}\nhttp {{\n  access_log off;\n  client_body_temp_path {0}/body;\n  proxy_temp_path {0}/proxy;\n  fastcgi_temp_path {0}/fastcgi;\n  uwsgi_temp_path {0}/uwsgi;\n  scgi_temp_path {0}/scgi;\n  include {0}/default.conf;\n}}\n",
            d.display()
        ),
    )
    .unwrap();
    let test = format!(
        "{} -t -p {} -c {}/nginx.conf",
        nginx.display(),
        d.display(),
        d.display()
    );
    let out = if isolated {
        std::fs::write(
            d.join("hosts"),
            "127.0.0.1 localhost catalog reservation order payment queue users console gateway\n",
        )
        .unwrap();
        Command::new("unshare")
            .args(["-m", "sh", "-c"])
            .arg(format!(
                "mount --bind {}/hosts /etc/hosts && {test}",
                d.display()
            ))
            .output()
            .unwrap()
    } else {
        Command::new("sh").args(["-c", &test]).output().unwrap()
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "nginx -t failed:\n{stderr}");
    assert!(stderr.contains("test is successful"), "{stderr}");
    // An unknown upstream name is what would fail on a typo.
    if isolated {
        std::fs::write(
            d.join("default.conf"),
            conf.replace("server catalog:", "server catalogue:"),
        )
        .unwrap();
        let bad = Command::new("unshare")
            .args(["-m", "sh", "-c"])
            .arg(format!(
                "mount --bind {}/hosts /etc/hosts && {test}",
                d.display()
            ))
            .output()
            .unwrap();
        assert!(
            !bad.status.success(),
            "a name compose does not define must not resolve"
        );
    }
}

#[test]
fn prometheus_scrapes_every_service_and_the_dashboard_queries_recorded_metrics() {
    let doc = load_compose();
    let all = services(&doc);
    let prom = std::fs::read_to_string(compose_dir().join("prometheus/prometheus.yml")).unwrap();
    let prom = &YamlLoader::load_from_str(&prom).unwrap()[0];
    let sd = &prom["scrape_configs"][0]["dns_sd_configs"][0];
    let scraped: BTreeSet<&str> = sd["names"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    // Every service running `ticketing serve` serves /metrics on its port.
    let serving: BTreeSet<&str> = all
        .iter()
        .filter(|(_, s)| s["command"][0].as_str() == Some("serve"))
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(scraped, serving);
    for (name, svc) in all.iter().filter(|(n, _)| serving.contains(n.as_str())) {
        let port = environment(svc)
            .into_iter()
            .find(|(k, _)| k == "TICKETING_SERVICE__PORT")
            .unwrap()
            .1;
        assert_eq!(
            Some(port.parse::<i64>().unwrap()),
            sd["port"].as_i64(),
            "{name}"
        );
    }

    let dash: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(compose_dir().join("grafana/dashboards/ticketing.json")).unwrap(),
    )
    .unwrap();
    let datasource = std::fs::read_to_string(
        compose_dir().join("grafana/provisioning/datasources/prometheus.yml"),
    )
    .unwrap();
    let uid = YamlLoader::load_from_str(&datasource).unwrap()[0]["datasources"][0]["uid"]
        .as_str()
        .unwrap()
        .to_owned();
    let recorded = ticketing_services::metrics::ALL;
    let mut queried = BTreeSet::new();
    for panel in dash["panels"].as_array().unwrap() {
        assert_eq!(
            panel["datasource"]["uid"],
            uid.as_str(),
            "{}",
            panel["title"]
        );
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            for token in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                let metric = ["_bucket", "_count", "_sum"]
                    .iter()
                    .find_map(|s| token.strip_suffix(s))
                    .filter(|m| recorded.contains(m))
                    .unwrap_or(token);
                // Our naming: units or kinds last (a misspelt name still
                // ends like one, and fails below).
                let looks_like_metric = [
                    "_total",
                    "_seconds",
                    "_rows",
                    "_subscribers",
                    "_lag",
                    "_bytes",
                    "_fds",
                    "_threads",
                    "_tasks",
                    "_connections",
                    "_visitors",
                    "_shoppers",
                ]
                .iter()
                .any(|s| metric.ends_with(s));
                if looks_like_metric {
                    assert!(
                        recorded.contains(&metric),
                        "{expr}: {metric} is not recorded"
                    );
                    queried.insert(metric.to_owned());
                }
            }
        }
    }
    let recorded: BTreeSet<String> = recorded.iter().map(|m| (*m).to_owned()).collect();
    assert_eq!(
        queried, recorded,
        "every recorded metric is on the dashboard"
    );
    // The SLOs are on it, with their limits.
    let text = dash.to_string();
    assert!(text.contains("histogram_quantile(0.95"));
    assert!(text.contains("\"value\":0.3"));
    assert!(text.contains("\"value\":0.5"));
}

/// A fake `docker` for deploy.sh: logs each call with its IMAGE_TAG, and
/// answers `compose ps` with every container healthy when the tag last
/// brought up is listed in `healthy-tags`, else "starting".
const FAKE_DOCKER: &str = r#"#!/bin/sh
dir="$(dirname "$0")"
echo "IMAGE_TAG=${IMAGE_TAG:-} $*" >>"$dir/calls.log"
case "$*" in
  *" up -d"*) echo "${IMAGE_TAG:-}" >"$dir/current" ;;
  *" ps --all --format"*)
    if grep -qx "$(cat "$dir/current" 2>/dev/null)" "$dir/healthy-tags"; then h=healthy; else h=starting; fi
    for s in redis kafka postgres catalog reservation reservation order order payment gateway; do echo "$s running $h"; done ;;
  *" ps --format"*) echo catalog ;;
esac
exit 0
"#;

#[test]
fn span_export_is_off_by_default_and_points_at_the_profiles_jaeger() {
    let doc = load_compose();
    // Every service exports to OTLP_ENDPOINT, empty (off) unless set.
    for (name, svc) in services(&doc) {
        if svc["command"]
            .as_vec()
            .is_some_and(|c| c[0].as_str() == Some("serve"))
        {
            let env = environment(&svc);
            let endpoint = env
                .iter()
                .find(|(k, _)| k == "TICKETING_TRACE__OTLP_ENDPOINT")
                .unwrap_or_else(|| panic!("{name} has no span export setting"));
            assert_eq!(endpoint.1, "${OTLP_ENDPOINT:-}", "{name}");
        }
    }
    // The endpoint .env.example suggests is the OTLP/HTTP port of a
    // collector in the opt-in observability profile.
    let example = std::fs::read_to_string(compose_dir().join(".env.example")).unwrap();
    assert!(
        example.lines().any(|l| l == "OTLP_ENDPOINT="),
        "off by default"
    );
    let suggested = example
        .lines()
        .filter(|l| l.starts_with('#'))
        .find_map(|l| l.split_whitespace().find(|w| w.starts_with("http://")))
        .expect("a suggested OTLP endpoint")
        .trim_end_matches('.');
    let host_port = suggested.trim_start_matches("http://");
    let (host, port) = host_port.split_once(':').unwrap();
    assert_eq!(port, "4318", "OTLP over HTTP");
    let collector = service(&doc, host);
    assert!(
        collector["profiles"]
            .as_vec()
            .is_some_and(|p| p.iter().any(|x| x.as_str() == Some("observability"))),
        "{host} is opt-in"
    );
    assert!(collector["image"].as_str().unwrap().contains("jaeger"));
}

#[test]
fn deploy_records_a_healthy_release_and_rolls_back_an_unhealthy_one() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let bin = d.join("bin");
    let site = d.join("compose");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(&site).unwrap();
    for f in ["deploy.sh", "docker-compose.yml"] {
        std::fs::copy(compose_dir().join(f), site.join(f)).unwrap();
    }
    std::fs::write(bin.join("docker"), FAKE_DOCKER).unwrap();
    Command::new("chmod")
        .arg("+x")
        .arg(bin.join("docker"))
        .status()
        .unwrap();
    std::fs::write(bin.join("healthy-tags"), "v1\n").unwrap();
    let deploy = |tag: &str| {
        Command::new("bash")
            .arg(site.join("deploy.sh"))
            .arg(tag)
            .env(
                "PATH",
                format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
            )
            .env("HEALTH_TIMEOUT_S", "1")
            .env("POLL_S", "0.1")
            .output()
            .unwrap()
    };
    let calls = || std::fs::read_to_string(bin.join("calls.log")).unwrap_or_default();

    // Without compose/.env nothing is touched.
    let out = deploy("v1");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cp compose/.env.example"));
    assert!(calls().is_empty());
    std::fs::write(site.join(".env"), "POSTGRES_PASSWORD=x\nINTERNAL_TOKEN=y\n").unwrap();

    let out = deploy("v1");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(
        std::fs::read_to_string(site.join(".deployed-tag")).unwrap(),
        "v1\n"
    );
    assert!(calls().contains("IMAGE_TAG=v1 compose -f docker-compose.yml build catalog"));
    assert!(calls().contains("IMAGE_TAG=v1 compose -f docker-compose.yml up -d --remove-orphans"));

    // v2 never becomes healthy: v1 comes back, v2 is not recorded.
    let out = deploy("v2");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("rolling back to v1"), "{stdout}");
    assert!(stdout.contains("rolled back to v1; release v2 was NOT deployed"));
    let log = calls();
    let ups: Vec<&str> = log.lines().filter(|l| l.contains(" up -d")).collect();
    assert_eq!(
        ups.iter().map(|l| &l[..12]).collect::<Vec<_>>(),
        ["IMAGE_TAG=v1", "IMAGE_TAG=v2", "IMAGE_TAG=v1"]
    );
    assert!(
        log.contains("logs --tail 30 catalog"),
        "the failing release's logs are shown"
    );
    assert_eq!(
        std::fs::read_to_string(site.join(".deployed-tag")).unwrap(),
        "v1\n"
    );
}
