//! docker-compose.yml, checked statically because Docker does not run on the
//! development machines: it parses; every service has an image; Tributary's
//! services run binaries the Dockerfile ships, and every setting they are
//! given is one the binary accepts (its `--help` lists the variable) and
//! they export spans to the collector's OTLP receiver;
//! dependencies, Envoy's upstreams, Prometheus's targets and the console's
//! query API and watched services name real services on the right ports;
//! the console watches every Tributary service that runs once and none that
//! is replicated (Prometheus scrapes each replica of those), is published on
//! localhost only and, without API keys, answers only its own host names;
//! host ports do not collide; processors and sinks scale with the
//! partitions set in `.env`; the broker is the Apache Kafka version the
//! tests run.
use std::{collections::BTreeSet, path::Path, process::Command};

use serde_yaml::Value;

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn load(path: &str) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(root().join(path))?;
    let mut value: Value = serde_yaml::from_str(&text)?;
    value.apply_merge()?;
    Ok(value)
}

fn help_of(binary: &str) -> anyhow::Result<String> {
    // Built once per run: each build waits for cargo's lock on the target
    // directory, which other builds may hold for minutes.
    static BIN_DIR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    let dir = match BIN_DIR.get() {
        Some(dir) => dir,
        None => {
            let built = tributary_stack::binaries::build_service_binaries()?;
            BIN_DIR.get_or_init(|| built)
        }
    };
    let output = Command::new(dir.join(binary)).arg("--help").output()?;
    anyhow::ensure!(output.status.success(), "{binary} --help failed");
    Ok(String::from_utf8(output.stdout)?)
}

fn port_of(addr: &str) -> u16 {
    addr.rsplit(':').next().unwrap().parse().unwrap()
}

/// A `ports` entry (`HOST:CONTAINER` or `IP:HOST:CONTAINER`) as its IP (if
/// any), host port and container port.
fn published(entry: &str) -> (Option<&str>, u16, u16) {
    let parts: Vec<&str> = entry.split(':').collect();
    match parts[..] {
        [host, container] => (None, host.parse().unwrap(), container.parse().unwrap()),
        [ip, host, container] => (Some(ip), host.parse().unwrap(), container.parse().unwrap()),
        _ => panic!("unexpected ports entry {entry}"),
    }
}

#[test]
fn docker_compose_is_consistent_with_the_binaries_and_the_deploy_configs() -> anyhow::Result<()> {
    let compose = load("docker-compose.yml")?;
    let services = compose["services"].as_mapping().expect("services");
    let names: BTreeSet<String> = services
        .keys()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    // The tests' Apache Kafka (dev/kafka/pom.xml) is the one compose runs.
    assert_eq!(
        services["kafka"]["image"].as_str(),
        Some(format!("apache/kafka:{}", tributary_stack::apache_kafka::version()).as_str()),
        "docker-compose's broker and the tests' differ"
    );
    for required in [
        "kafka",
        "schema-registry",
        "postgres",
        "ingest-1",
        "ingest-2",
        "query",
        "envoy",
        "processor",
        "sink",
        "prometheus",
        "console",
        "otel-collector",
        "jaeger",
    ] {
        assert!(names.contains(required), "no `{required}` service");
    }

    let collector = load("deploy/otel-collector.yaml")?;
    let otlp_port = port_of(
        collector["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"]
            .as_str()
            .expect("the collector receives OTLP over gRPC"),
    );

    let dockerfile = std::fs::read_to_string(root().join("Dockerfile"))?;
    let mut host_ports = BTreeSet::new();
    for (name, service) in services {
        let name = name.as_str().unwrap();
        assert!(service["image"].is_string(), "{name} has no image");
        for dependency in service["depends_on"]
            .as_mapping()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_else(|| {
                service["depends_on"]
                    .as_sequence()
                    .cloned()
                    .unwrap_or_default()
            })
        {
            let dependency = dependency.as_str().unwrap();
            assert!(
                names.contains(dependency),
                "{name} depends on unknown service {dependency}"
            );
        }
        for port in service["ports"].as_sequence().cloned().unwrap_or_default() {
            let host = published(port.as_str().unwrap()).1.to_string();
            assert!(
                host_ports.insert(host.clone()),
                "host port {host} is published twice"
            );
        }
        let Some(binary) = service["command"].as_sequence().and_then(|c| c[0].as_str()) else {
            continue;
        };
        if !binary.starts_with("tributary-") {
            continue;
        }
        assert_eq!(
            service["build"]["dockerfile"].as_str(),
            Some("Dockerfile"),
            "{name} is not built from the Dockerfile"
        );
        assert!(
            dockerfile.contains(&format!("target/release/{binary}")),
            "the Dockerfile does not ship {binary}"
        );
        let help = help_of(binary)?;
        // Spans go to the collector's OTLP/gRPC receiver (a variable the
        // OpenTelemetry SDK reads, so not in `--help`).
        let otlp = service["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"]
            .as_str()
            .unwrap_or_else(|| panic!("{name} exports no spans"));
        assert_eq!(
            otlp.rsplit_once(':').map(|(h, _)| h),
            Some("http://otel-collector"),
            "{name}"
        );
        assert_eq!(port_of(otlp), otlp_port, "{name}");
        for (variable, _) in service["environment"].as_mapping().expect("environment") {
            let variable = variable.as_str().unwrap();
            if variable.starts_with("OTEL_") {
                continue;
            }
            assert!(
                help.contains(&format!("[env: {variable}")),
                "{name}: {binary} has no setting {variable}"
            );
        }
    }

    // Envoy balances over the ingest replicas and the query API on the
    // ports they listen on, each cluster over the services of its side.
    let envoy = load("deploy/envoy.yaml")?;
    for cluster in envoy["static_resources"]["clusters"].as_sequence().unwrap() {
        let name = cluster["name"].as_str().unwrap();
        let (side, protocol) = name.split_once('_').unwrap();
        let serving = |service: &str| service.starts_with(side);
        let example = services
            .iter()
            .find(|(n, _)| serving(n.as_str().unwrap()))
            .map(|(_, s)| s)
            .unwrap_or_else(|| panic!("envoy cluster {name} has no {side} service"));
        let variable = if protocol == "grpc" {
            "TRIBUTARY_GRPC_ADDR"
        } else {
            "TRIBUTARY_HTTP_ADDR"
        };
        let wanted = port_of(example["environment"][variable].as_str().unwrap());
        for endpoint in cluster["load_assignment"]["endpoints"][0]["lb_endpoints"]
            .as_sequence()
            .unwrap()
        {
            let address = &endpoint["endpoint"]["address"]["socket_address"];
            let target = address["address"].as_str().unwrap();
            assert!(names.contains(target), "envoy targets an unknown service");
            assert!(serving(target), "{name} targets {target}");
            assert_eq!(address["port_value"].as_u64(), Some(u64::from(wanted)));
        }
    }

    // Prometheus scrapes services that serve metrics on the scraped port.
    let prometheus = load("deploy/prometheus.yml")?;
    let mut scraped_by_dns = BTreeSet::new();
    for job in prometheus["scrape_configs"].as_sequence().unwrap() {
        for config in job["dns_sd_configs"].as_sequence().into_iter().flatten() {
            for name in config["names"].as_sequence().unwrap() {
                scraped_by_dns.insert(name.as_str().unwrap().to_string());
            }
        }
        let targets: Vec<(String, u16)> = match job["static_configs"].as_sequence() {
            Some(configs) => configs[0]["targets"]
                .as_sequence()
                .unwrap()
                .iter()
                .map(|t| {
                    let (host, port) = t.as_str().unwrap().split_once(':').unwrap();
                    (host.to_string(), port.parse().unwrap())
                })
                .collect(),
            None => job["dns_sd_configs"]
                .as_sequence()
                .unwrap()
                .iter()
                .map(|c| {
                    (
                        c["names"][0].as_str().unwrap().to_string(),
                        c["port"].as_u64().unwrap() as u16,
                    )
                })
                .collect(),
        };
        for (host, port) in targets {
            let metrics = services[host.as_str()]["environment"]["TRIBUTARY_METRICS_ADDR"]
                .as_str()
                .unwrap_or_else(|| panic!("{host} serves no metrics"));
            assert_eq!(port_of(metrics), port, "{host}");
        }
    }

    // The console: published on the port it listens on, on localhost only
    // (it shows dead letters and replays them), answering only its own names
    // while it has no API keys (DNS rebinding), its query API a service
    // serving gRPC there, and every Tributary service that serves metrics
    // and runs once watched on its metrics port (and, with a readiness URL,
    // on its HTTP port); a consumer (no readiness URL) is one without HTTP.
    let console = &services["console"]["environment"];
    let console_port = port_of(console["TRIBUTARY_CONSOLE_HTTP_ADDR"].as_str().unwrap());
    let console_ports: Vec<_> = services["console"]["ports"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|p| published(p.as_str().unwrap()))
        .collect();
    assert!(
        console_ports.contains(&(Some("127.0.0.1"), console_port, console_port)),
        "the console's port {console_port} is not published on 127.0.0.1: {console_ports:?}"
    );
    assert!(
        console_ports
            .iter()
            .all(|(ip, _, _)| *ip == Some("127.0.0.1")),
        "the console is published beyond localhost: {console_ports:?}"
    );
    if console["TRIBUTARY_API_KEYS"].is_null() && console["TRIBUTARY_API_KEYS_FILE"].is_null() {
        let allowed: BTreeSet<&str> = console["TRIBUTARY_CONSOLE_ALLOWED_HOSTS"]
            .as_str()
            .expect("the console without API keys names the hosts it answers")
            .split(',')
            .map(str::trim)
            .collect();
        for host in ["localhost", "127.0.0.1"] {
            assert!(
                allowed.contains(host),
                "the console does not answer {host}: {allowed:?}"
            );
        }
    }
    let url_target = |url: &str| -> (String, u16) {
        let url = url::Url::parse(url).unwrap();
        (
            url.host_str().unwrap().to_string(),
            url.port_or_known_default().unwrap(),
        )
    };
    let (query_host, query_port) = url_target(
        console["TRIBUTARY_CONSOLE_QUERY_URL"]
            .as_str()
            .expect("the console has a query API"),
    );
    assert_eq!(
        services[query_host.as_str()]["command"][0].as_str(),
        Some("tributary-query"),
        "the console's query URL is not the query API"
    );
    assert_eq!(
        port_of(
            services[query_host.as_str()]["environment"]["TRIBUTARY_GRPC_ADDR"]
                .as_str()
                .unwrap()
        ),
        query_port,
        "the console's query URL"
    );
    assert_eq!(
        console["TRIBUTARY_KAFKA_BROKERS"],
        services["processor"]["environment"]["TRIBUTARY_KAFKA_BROKERS"],
        "the console reads dead letters from another broker"
    );
    let mut watched = BTreeSet::new();
    for entry in console["TRIBUTARY_CONSOLE_SERVICES"]
        .as_str()
        .expect("the console watches services")
        .split(';')
    {
        let (name, urls) = entry.trim().split_once('=').unwrap();
        let mut urls = urls.split(',');
        let (host, port) = url_target(urls.next().unwrap());
        let service = &services[host.as_str()];
        assert!(
            service.is_mapping(),
            "console: {name} names unknown service {host}"
        );
        let metrics = service["environment"]["TRIBUTARY_METRICS_ADDR"]
            .as_str()
            .unwrap_or_else(|| panic!("console: {host} serves no metrics"));
        assert_eq!(port_of(metrics), port, "console: {name}'s metrics port");
        match urls.next() {
            Some(ready) => {
                let (ready_host, ready_port) = url_target(ready);
                assert_eq!(ready_host, host, "console: {name} is ready elsewhere");
                let http = service["environment"]["TRIBUTARY_HTTP_ADDR"]
                    .as_str()
                    .unwrap();
                assert_eq!(
                    port_of(http),
                    ready_port,
                    "console: {name}'s readiness port"
                );
            }
            None => assert!(
                service["environment"]["TRIBUTARY_HTTP_ADDR"].is_null(),
                "console: {name} serves HTTP but has no readiness URL"
            ),
        }
        watched.insert(host);
    }
    // A replicated service is many containers behind one DNS name: each
    // scrape would reach another of them, so the console leaves it to
    // Prometheus, which resolves the name to every replica.
    for (name, service) in services {
        let name = name.as_str().unwrap();
        let runs_tributary = service["command"][0]
            .as_str()
            .is_some_and(|b| b.starts_with("tributary-") && b != "tributary-console");
        if !runs_tributary || service["environment"]["TRIBUTARY_METRICS_ADDR"].is_null() {
            continue;
        }
        if service["deploy"]["replicas"].is_null() {
            assert!(watched.contains(name), "the console does not watch {name}");
        } else {
            assert!(
                !watched.contains(name),
                "the console watches {name}, which is replicated behind one name"
            );
            assert!(
                scraped_by_dns.contains(name),
                "Prometheus does not scrape every replica of {name} (dns_sd_configs)"
            );
        }
    }

    // The Schema Registry lets in only authenticated users, and every
    // service that calls it passes the credentials of one of them.
    let registry = &services["schema-registry"]["environment"];
    assert_eq!(
        registry["SCHEMA_REGISTRY_AUTHENTICATION_METHOD"].as_str(),
        Some("BASIC")
    );
    let login = registry["SCHEMA_REGISTRY_OPTS"]
        .as_str()
        .and_then(|o| o.strip_prefix("-Djava.security.auth.login.config="))
        .expect("the registry reads a JAAS login configuration");
    let mounted = |container_path: &str| -> std::path::PathBuf {
        services["schema-registry"]["volumes"]
            .as_sequence()
            .unwrap()
            .iter()
            .find_map(|v| {
                let (host, rest) = v.as_str().unwrap().split_once(':')?;
                let container = rest.trim_end_matches(":ro");
                let inside = container_path.strip_prefix(container)?;
                Some(root().join(host).join(inside.trim_start_matches('/')))
            })
            .unwrap_or_else(|| panic!("{container_path} is not mounted"))
    };
    let jaas = std::fs::read_to_string(mounted(login))?;
    let realm = registry["SCHEMA_REGISTRY_AUTHENTICATION_REALM"]
        .as_str()
        .unwrap();
    assert!(jaas.contains(&format!("{realm} {{")), "{jaas}");
    let passwords_path = jaas
        .split("file=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the login module names its users file");
    let passwords = std::fs::read_to_string(mounted(passwords_path))?;
    let allowed_roles: Vec<&str> = registry["SCHEMA_REGISTRY_AUTHENTICATION_ROLES"]
        .as_str()
        .unwrap()
        .split(',')
        .collect();
    for (name, service) in services {
        let environment = &service["environment"];
        if environment["TRIBUTARY_REGISTRY_URL"].is_null() {
            continue;
        }
        let credentials = environment["TRIBUTARY_REGISTRY_BASIC_AUTH"]
            .as_str()
            .unwrap_or_else(|| panic!("{name:?} has no registry credentials"));
        let (user, password) = credentials.split_once(':').unwrap();
        let entry = passwords
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{user}:")))
            .unwrap_or_else(|| panic!("{name:?}: no registry user {user}"));
        let (credential, roles) = entry.trim().split_once(',').unwrap();
        let md5 = credential.strip_prefix("MD5:").expect("an MD5 credential");
        assert_eq!(
            md5,
            hex::encode(<md5::Md5 as md5::Digest>::digest(password)),
            "{name:?}: the password is not {user}'s"
        );
        assert!(
            roles.split(',').any(|r| allowed_roles.contains(&r.trim())),
            "{user} has no role the registry lets in"
        );
    }

    // As many processors and sinks as partitions, set in .env.
    let env = std::fs::read_to_string(root().join(".env"))?;
    assert!(
        env.lines().any(|l| l.starts_with("TRIBUTARY_PARTITIONS=")),
        ".env sets no partition count"
    );
    for scaled in ["processor", "sink"] {
        assert_eq!(
            services[scaled]["deploy"]["replicas"].as_str(),
            Some("${TRIBUTARY_PARTITIONS:-4}"),
            "{scaled}"
        );
    }
    Ok(())
}
