//! # Headless Chromium for the page tests: [`Chromium`] and its [`Tab`]s
//!
//! [`Chromium::start`] runs Debian's `chromedriver` on a port of its choosing; each
//! [`Chromium::open`] is a browser of its own (a fresh profile: no cookie shared), with
//! JavaScript on or off. A [`Tab`] walks the pages as a person does (follow a link, tick
//! a box, press a button) and checks every page it arrives on:
//!
//! * with JavaScript on, axe-core (vendored in `fixtures/axe`, never fetched) runs on the
//!   page, and a serious or critical violation fails the test, naming the rule and the
//!   elements;
//! * no page shows a text the tab must never see ([`Tab::never_show`]: another student's
//!   name or number, for a student's tab).
//!
//! The browser runs as the machine's tests must (root, a closed network): headless, no
//! sandbox, no GPU, no background networking.

use serde_json::{json, Value};
use std::collections::{BTreeSet, VecDeque};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use thirtyfour::prelude::*;

/// The WebDriver server of Debian's `chromium-driver`, and the browser it starts.
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
const INSTALL: &str = "apt-get install chromium chromium-driver";

/// axe-core, injected into each page the tests reach.
const AXE: &str = include_str!("../fixtures/axe/axe.min.js");

/// A running `chromedriver`, stopped when dropped.
pub struct Chromium {
    driver: Child,
    url: String,
    profiles: tempfile::TempDir,
}

impl Chromium {
    /// Starts `chromedriver` on a free port (it says which); a missing browser fails with
    /// the command that installs it.
    pub fn start() -> Chromium {
        for program in [CHROMEDRIVER, CHROMIUM] {
            assert!(
                Path::new(program).exists(),
                "{program} is missing: the browser tests need Debian's Chromium ({INSTALL})"
            );
        }
        let mut driver = Command::new(CHROMEDRIVER)
            .args(["--port=0", "--log-level=WARNING"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("chromedriver starts");
        let stdout = driver.stdout.take().expect("piped");
        let stderr = driver.stderr.take().expect("piped");
        // Its complaints, kept to say why it stopped, and never blocking it.
        let complaints = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut BufReader::new(stderr), &mut text);
            text
        });
        let mut lines = BufReader::new(stdout).lines();
        let port = loop {
            let Some(line) = lines.next() else {
                let status = driver.wait();
                let complaints = complaints.join().unwrap_or_default();
                panic!("chromedriver stopped before saying its port ({status:?}): {complaints}");
            };
            let line = line.expect("chromedriver's output is text");
            if let Some(rest) = line.split("started successfully on port ").nth(1) {
                break rest.trim_end_matches('.').to_owned();
            }
        };
        // Its further output is not read: drain it so that it never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Chromium {
            driver,
            url: format!("http://127.0.0.1:{port}"),
            profiles: tempfile::tempdir().expect("a temporary directory"),
        }
    }

    /// A new browser (its own profile) on the site at `root`, with JavaScript on or off,
    /// asking for pages in `languages` (an `Accept-Language` list, e.g. `fr-FR,fr`).
    pub async fn open(&self, root: &str, javascript: bool, languages: &str) -> Tab {
        let profile = tempfile::tempdir_in(self.profiles.path()).expect("a profile directory");
        let mut caps = DesiredCapabilities::chrome();
        caps.set_binary(CHROMIUM).unwrap();
        for arg in [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1280,900",
        ] {
            caps.add_arg(arg).unwrap();
        }
        caps.add_arg(&format!("--user-data-dir={}", profile.path().display()))
            .unwrap();
        let mut prefs = json!({ "intl.accept_languages": languages });
        if !javascript {
            prefs["profile.managed_default_content_settings.javascript"] = json!(2);
        }
        caps.add_experimental_option("prefs", prefs).unwrap();
        let driver = WebDriver::new(&self.url, caps)
            .await
            .expect("chromedriver opens a session");
        Tab {
            driver,
            root: root.trim_end_matches('/').to_owned(),
            javascript,
            forbidden: Vec::new(),
            audited: 0,
            at: String::new(),
            _profile: profile,
        }
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// One browser on the site, checking each page it arrives on.
pub struct Tab {
    driver: WebDriver,
    root: String,
    javascript: bool,
    forbidden: Vec<String>,
    audited: usize,
    /// The path of the page shown (for messages).
    at: String,
    _profile: tempfile::TempDir,
}

impl Tab {
    /// Texts no page of this tab may show (checked on every page from now on).
    pub fn never_show(&mut self, texts: &[String]) {
        self.forbidden.extend(texts.iter().cloned());
    }

    /// How many pages axe-core checked in this tab.
    pub fn audited(&self) -> usize {
        self.audited
    }

    /// Goes to `path` of the site, and checks the page.
    pub async fn goto(&mut self, path: &str) -> String {
        self.driver
            .goto(format!("{}{path}", self.root))
            .await
            .unwrap();
        self.arrived().await
    }

    /// The path (and query) of the page shown.
    pub async fn path(&self) -> String {
        let url = self.driver.current_url().await.unwrap();
        let path = url.path().to_owned();
        match url.query() {
            Some(query) => format!("{path}?{query}"),
            None => path,
        }
    }

    /// The page's HTML as the browser holds it.
    pub async fn source(&self) -> String {
        self.driver.source().await.unwrap()
    }

    /// The page's visible text.
    pub async fn text(&self) -> String {
        let body = self.driver.find(By::Tag("body")).await.unwrap();
        body.text().await.unwrap()
    }

    /// Follows the link to `href`.
    pub async fn follow(&mut self, href: &str) -> String {
        let css = format!("a[href=\"{href}\"]");
        let link = (self.driver.find(By::Css(css.as_str())).await)
            .unwrap_or_else(|_| panic!("no link to {href} on {}", self.here()));
        self.leave(link).await
    }

    /// Presses the button that reads `label` (in the form `form`, an action path), and
    /// checks the page it leads to.
    pub async fn press(&mut self, form: &str, label: &str) -> String {
        let xpath = format!("//form[@action=\"{form}\"]//button[normalize-space()=\"{label}\"]");
        let button = (self.driver.find(By::XPath(xpath.as_str())).await)
            .unwrap_or_else(|_| panic!("no button {label:?} in form {form} on {}", self.here()));
        self.leave(button).await
    }

    /// Ticks (or unticks) the box `id`, by clicking its label as a person does.
    pub async fn tick(&self, id: &str, ticked: bool) {
        let input = self.element(id).await;
        if input.is_selected().await.unwrap() != ticked {
            let css = format!("label[for=\"{id}\"]");
            let label = self.driver.find(By::Css(css.as_str())).await.unwrap();
            label.click().await.unwrap();
        }
        assert_eq!(input.is_selected().await.unwrap(), ticked, "box {id}");
    }

    /// Types `text` into the field `id` (emptied first).
    pub async fn fill(&self, id: &str, text: &str) {
        let field = self.element(id).await;
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    /// Chooses the option `value` of the list `id`.
    pub async fn choose(&self, id: &str, value: &str) {
        let css = format!("select#{id} option[value=\"{value}\"]");
        let option = (self.driver.find(By::Css(css.as_str())).await)
            .unwrap_or_else(|_| panic!("no option {value} in {id}"));
        option.click().await.unwrap();
    }

    /// The whole page (the window stretched to its height for the while) as a PNG in
    /// `file`.
    pub async fn screenshot(&self, file: &Path) {
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        let height = (self.driver)
            .execute("return document.documentElement.scrollHeight;", Vec::new())
            .await
            .unwrap();
        let height: i64 = height.convert().unwrap();
        let window = self.driver.get_window_rect().await.unwrap();
        let width = window.width as u32;
        let stretched = self
            .driver
            .set_window_rect(0, 0, width, height as u32 + 100);
        stretched.await.unwrap();
        self.driver.screenshot(file).await.unwrap();
        let restored = self
            .driver
            .set_window_rect(0, 0, width, window.height as u32);
        restored.await.unwrap();
    }

    /// Every page reachable from the one shown by following links of the site (but those
    /// that log in or out, and the API), each checked; their paths.
    pub async fn crawl(&mut self) -> Vec<String> {
        let mut seen = BTreeSet::new();
        let mut queue = VecDeque::from([self.path().await]);
        while let Some(path) = queue.pop_front() {
            if !seen.insert(path.clone()) || seen.len() > 100 {
                continue;
            }
            self.goto(&path).await;
            for link in self.driver.find_all(By::Css("a[href]")).await.unwrap() {
                let href = link.attr("href").await.unwrap().unwrap_or_default();
                let href = href.strip_prefix(&self.root).unwrap_or(&href).to_owned();
                let ours = href.starts_with('/') && !href.starts_with("//");
                let excluded = href.starts_with("/auth/") || href.starts_with("/api/");
                if ours && !excluded && !href.contains('#') {
                    queue.push_back(href);
                }
            }
        }
        seen.into_iter().collect()
    }

    /// Closes the browser.
    pub async fn close(self) {
        self.driver.quit().await.unwrap();
    }

    async fn element(&self, id: &str) -> WebElement {
        (self.driver.find(By::Id(id)).await)
            .unwrap_or_else(|_| panic!("no element #{id} on {}", self.here()))
    }

    fn here(&self) -> String {
        self.at.clone()
    }

    /// Clicks `control` and waits for the page it leads to (the one shown gone, the new
    /// one loaded), then checks it: a script run before would run on the page left.
    async fn leave(&mut self, control: WebElement) -> String {
        let left = self.driver.find(By::Tag("html")).await.unwrap();
        control.click().await.unwrap();
        left.wait_until().stale().await.unwrap();
        self.arrived().await
    }

    /// The checks of every page: nothing forbidden shown; axe-core's, with JavaScript.
    async fn arrived(&mut self) -> String {
        let source = self.source().await;
        let path = self.path().await;
        self.at = path.clone();
        for text in &self.forbidden {
            assert!(
                !source.contains(text.as_str()),
                "{path} shows {text:?}, which this person must never see:\n{source}"
            );
        }
        if self.javascript {
            self.audit(&path).await;
        }
        source
    }

    /// axe-core on the page: no serious or critical violation.
    async fn audit(&mut self, path: &str) {
        let run = format!(
            "{AXE}\n;const done = arguments[arguments.length - 1];\
             axe.run(document, {{ resultTypes: ['violations'] }})\
               .then(r => done(r.violations.map(v => ({{ id: v.id, impact: v.impact, help: v.help, \
                  nodes: v.nodes.map(n => n.target.join(' ')) }}))))\
               .catch(e => done([{{ id: 'axe-failed', impact: 'critical', help: String(e), nodes: [] }}]));"
        );
        let violations = self.driver.execute_async(run, Vec::new()).await.unwrap();
        let violations: Vec<Value> = violations.convert().unwrap();
        let grave: Vec<&Value> = (violations.iter())
            .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
            .collect();
        assert!(
            grave.is_empty(),
            "axe-core finds serious or critical violations on {path}:\n{}",
            serde_json::to_string_pretty(&grave).unwrap()
        );
        self.audited += 1;
    }
}
