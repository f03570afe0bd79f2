//! [`App`]: TaskTonic's formula — settings, logging, catalysts, starting tonics, and the main loop.

use std::fmt;
use std::sync::{Arc, Weak};

use parking_lot::Mutex;

pub use self::running::RunningApp;

use crate::catalyst::{Core, Parker, ThreadParker, enter};
use crate::clock::Clock;
use crate::ctx::{SpawnSpec, spawn_top};

mod running;
use crate::place::Place;
use crate::runtime::{Runtime, unfit_thread_name};
use crate::{Failure, RunError, Settings, Tonic, TonicId};

type Starter = Box<dyn FnOnce(&Arc<Runtime>) -> Result<(), String> + Send>;
type ParkerFactory = Box<dyn FnOnce() -> Box<dyn Parker> + Send>;

/// The application: its project name, settings, log level, catalysts and starting tonics.
///
/// [`run`](App::run) runs the main catalyst on the calling thread and returns when every tonic
/// has completed. Other catalysts are threads, started when their first tonic arrives and ended
/// when their last tonic completes.
///
/// # Examples
///
/// ```
/// use tasktonic_core::{App, Ctx, Tonic};
///
/// struct Hello;
/// impl Tonic for Hello {
///     type State = ();
///     fn on_start(&mut self, ctx: &mut Ctx<Self>) {
///         assert_eq!(ctx.project(), "demo");
///         assert_eq!(ctx.settings().get("greeting"), Some("hi"));
///         ctx.finish();
///     }
/// }
///
/// App::new("demo")
///     .setting("greeting", "hi")
///     .catalyst("worker")
///     .tonic_on("worker", Hello)
///     .run()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct App {
    project: String,
    settings: Settings,
    /// `None`: install no logger at all.
    level: Option<log::LevelFilter>,
    catalysts: Vec<(String, Option<ParkerFactory>)>,
    starters: Vec<Starter>,
    stopper: Stopper,
}

impl fmt::Debug for App {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("App")
            .field("project", &self.project)
            .field("settings", &self.settings)
            .field("starting_tonics", &self.starters.len())
            .finish()
    }
}

impl App {
    /// A new app named `project` (also the setting `tasktonic/project/name`).
    pub fn new(project: impl Into<String>) -> App {
        let project = project.into();
        let mut settings = Settings::default();
        settings.set("tasktonic/project/name", project.clone());
        App {
            project,
            settings,
            level: Some(log::LevelFilter::Warn),
            catalysts: Vec::new(),
            starters: Vec::new(),
            stopper: Stopper::default(),
        }
    }

    /// Set one setting.
    pub fn setting(mut self, path: impl Into<String>, value: impl Into<String>) -> App {
        self.settings.set(path, value);
        self
    }

    /// The log level for the `env_logger` the app installs (default `Warn`; `RUST_LOG` overrides
    /// it). Nothing is installed if the program already set a logger.
    pub fn log_level(mut self, level: log::LevelFilter) -> App {
        self.level = Some(level);
        self
    }

    /// Install no logger, not even when none is installed: for an app that a library runs
    /// on a thread of its own (a log shipper), which must leave the process's logger to the
    /// program.
    pub fn without_logger(mut self) -> App {
        self.level = None;
        self
    }

    /// Declare a plain catalyst. Catalysts are also created on first use by name; declaring one
    /// documents the app's threads.
    pub fn catalyst(mut self, name: impl Into<String>) -> App {
        self.catalysts.push((name.into(), None));
        self
    }

    /// Declare a catalyst with its own parker (see [`extend`](crate::extend); a parker that
    /// shares state with its maker is opened with [`extend::open_catalyst`](crate::extend::open_catalyst)).
    pub fn catalyst_with(
        mut self,
        name: impl Into<String>,
        parker: impl FnOnce() -> Box<dyn Parker> + Send + 'static,
    ) -> App {
        self.catalysts.push((name.into(), Some(Box::new(parker))));
        self
    }

    /// Start `tonic` on the main catalyst.
    pub fn tonic<T: Tonic>(self, tonic: T) -> App {
        self.start(SpawnSpec::new(tonic))
    }

    /// Start `tonic` on the named catalyst.
    pub fn tonic_on<T: Tonic>(self, catalyst: impl Into<String>, tonic: T) -> App {
        let mut spec = SpawnSpec::new(tonic);
        spec.catalyst = Some(Place::Named(catalyst.into()));
        self.start(spec)
    }

    /// Start `tonic` on the main catalyst under `name`.
    pub fn tonic_named<T: Tonic>(self, name: impl Into<String>, tonic: T) -> App {
        let mut spec = SpawnSpec::new(tonic);
        spec.name = Some(name.into());
        self.start(spec)
    }

    fn start<T: Tonic>(mut self, spec: SpawnSpec<T>) -> App {
        self.starters.push(Box::new(move |runtime: &Arc<Runtime>| {
            let main = runtime.main.clone();
            spawn_top(runtime, spec, &main)
                .map(drop)
                .map_err(|e| e.to_string())
        }));
        self
    }

    /// A handle that stops the running app from any thread (a signal handler, a test).
    pub fn stopper(&self) -> Stopper {
        self.stopper.clone()
    }

    /// Run until every tonic has completed. The main catalyst runs on this thread.
    ///
    /// # Errors
    ///
    /// [`RunError`] listing the tonics that failed (panicked) without a base that handled it
    /// ([`FailureAction::Handled`](crate::FailureAction::Handled)), or that could not be started.
    pub fn run(self) -> Result<(), RunError> {
        self.run_with(|_| {})
    }

    /// Run the app on a thread of its own (named after the project), returning once its
    /// starting tonics are placed: they can be looked up by name at once
    /// ([`RunningApp::lookup`]), the app stopped, and waited for with a bound
    /// ([`RunningApp::join_timeout`]).
    ///
    /// # Errors
    ///
    /// The thread could not be started (the OS refused one, or the project's name holds a
    /// NUL byte and cannot name it), or it ended before the app started.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tasktonic_core::{App, Ctx, Receive, Tonic};
    ///
    /// struct Counter(u32);
    /// impl Tonic for Counter {
    ///     type State = ();
    /// }
    /// struct Add(u32);
    /// impl Receive<Add> for Counter {
    ///     fn receive(&mut self, ctx: &mut Ctx<Self>, Add(n): Add) {
    ///         self.0 += n;
    ///         if self.0 >= 3 {
    ///             ctx.finish();
    ///         }
    ///     }
    /// }
    ///
    /// let app = App::new("counting").tonic_named("counter", Counter(0)).spawn()?;
    /// let counter = app.lookup::<Counter>("counter").expect("placed");
    /// counter.send(Add(1)).ok();
    /// counter.send(Add(2)).ok();
    /// let result = app.join_timeout(Duration::from_secs(10)).expect("ended in time");
    /// assert!(result.is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spawn(self) -> std::io::Result<RunningApp> {
        if let Some(e) = unfit_thread_name("project", &self.project) {
            return Err(e);
        }
        let stopper = self.stopper.clone();
        let (placed, started) = crossbeam_channel::bounded(1);
        let (finished, done) = crossbeam_channel::bounded(1);
        let thread = std::thread::Builder::new()
            .name(self.project.clone())
            .spawn(move || {
                let result = self.run_with(|runtime| {
                    placed.send(runtime.clone()).ok();
                });
                finished.send(result).ok();
            })?;
        match started.recv() {
            Ok(runtime) => Ok(RunningApp::new(runtime, stopper, done, thread)),
            Err(_) => Err(std::io::Error::other(
                "the app's thread ended before the app started",
            )),
        }
    }

    /// [`run`](App::run), telling `placed` the runtime once the starting tonics are placed.
    fn run_with(self, placed: impl FnOnce(&Arc<Runtime>)) -> Result<(), RunError> {
        if let Some(level) = self.level {
            crate::logging::init(level);
        }
        let runtime = Runtime::new(
            self.project,
            self.settings,
            Clock::real(),
            Box::new(ThreadParker::new()),
            false,
        );
        let Some(mut parker) = runtime.main.parker.lock().take() else {
            unreachable!("a new runtime's main catalyst has its parker");
        };
        for (name, factory) in self.catalysts {
            match factory {
                Some(f) => {
                    runtime.catalyst(&name, f);
                }
                None => {
                    runtime.plain_catalyst(&name);
                }
            }
        }
        let core = Core::new(
            runtime.main.clone(),
            runtime.clock.clone(),
            runtime.clone() as Arc<dyn crate::catalyst::Names>,
        );
        let guard = enter(core.clone());
        let mut start_errors = Vec::new();
        for starter in self.starters {
            if let Err(e) = starter(&runtime) {
                start_errors.push(e);
            }
        }
        self.stopper.attach(&runtime);
        placed(&runtime);
        core.run_loop_reporting(&mut *parker, |_| runtime.live() == 0);
        drop(guard);
        core.clear();
        runtime.join_threads();
        let mut failures: Vec<Failure> = start_errors
            .into_iter()
            .map(|message| Failure {
                tonic: TonicId::from_raw(u64::MAX).unwrap_or_else(TonicId::next),
                name: "App".to_string(),
                message,
            })
            .collect();
        failures.extend(runtime.take_failures());
        if failures.is_empty() {
            Ok(())
        } else {
            Err(RunError { failures })
        }
    }
}

/// Stops a running [`App`] from any thread: every top-level tonic and service is asked to
/// finish, and `run` returns once all have completed. Stopping before `run` makes `run` stop at
/// once after starting its tonics.
#[derive(Clone, Default)]
pub struct Stopper {
    inner: Arc<Mutex<StopperState>>,
}

#[derive(Default)]
struct StopperState {
    runtime: Weak<Runtime>,
    requested: bool,
}

impl fmt::Debug for Stopper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stopper")
            .field("requested", &self.inner.lock().requested)
            .finish()
    }
}

impl Stopper {
    /// Ask the app to stop.
    pub fn stop(&self) {
        let runtime = {
            let mut state = self.inner.lock();
            state.requested = true;
            state.runtime.upgrade()
        };
        if let Some(runtime) = runtime {
            runtime.stop();
        }
    }

    fn attach(&self, runtime: &Arc<Runtime>) {
        let requested = {
            let mut state = self.inner.lock();
            state.runtime = Arc::downgrade(runtime);
            state.requested
        };
        if requested {
            runtime.stop();
        }
    }
}
