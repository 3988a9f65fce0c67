//! A seeded synthetic French university (DESIGN.md, "Testing architecture").
//!
//! [`University::generate`] draws the course structure of a plausible university (licences
//! in several disciplines, each with steps L1–L3, semesters, teaching units, course elements
//! and "UE d'ouverture" choice lists) and then, lazily, its students with their
//! administrative registrations, pedagogical enrolments and (optionally) results. Everything
//! is a canonical [`Record`], SIS-neutral: adapters' simulators serve these records in their
//! own protocol, and round-trip tests compare what the adapter reads back with them.
//!
//! The data carries the hard cases real data has: accented names and ligatures (é, ç, œ, ï),
//! compound names and particles, student numbers with a leading zero, missing INEs and
//! accounts, double registrations (two steps the same year, one of them not `main`),
//! cancelled and pending registrations, repeaters with carried-over units, students who
//! leave and new L1 students who arrive, choice lists, an option shared by the choice lists
//! of every licence (a mutualised unit with several parents), special statuses including
//! `other:<code>`. [`University::hard_cases`] names one example of each, and students 0 to 3
//! are forced to carry them so that even a 10-student university has every one.
//!
//! Node ids follow the Apogée conventions DESIGN.md documents (`VDI:LIC-INF/120`,
//! `VET:L2INF/120`, `LSE:INF3OUV`, `ELP:INF3U1`) and codes respect Apogée's column widths,
//! so an Apogée simulator can store them as they are.
//!
//! Deterministic: the same [`SynthConfig`] always gives the same records, in the same order.
//! Streaming: the structure is built up front (a few hundred nodes per year); each student is
//! generated on demand from its own random stream (seed, student index), so memory does not
//! grow with the number of students and any student can be generated alone.
//!
//! ```
//! use conpere_model::Record;
//! use conpere_synth::{SynthConfig, University};
//!
//! let university = University::generate(SynthConfig::new(42, 10));
//! assert!(university.records().all(|r| r.validate().is_ok()));
//!
//! let hard = university.hard_cases().expect("10 students over 2 years have every hard case");
//! assert!(hard.leading_zero_student.starts_with('0'));
//! let cancelled = university
//!     .people()
//!     .find(|r| r.key() == hard.cancelled_registration);
//! assert!(matches!(cancelled, Some(Record::Registration(_))));
//! ```
#![warn(missing_docs)]
#![forbid(unsafe_code)]

use chrono::{Days, NaiveDate};
use conpere_model::{
    CourseResult, Edge, Enrolment, Node, NodeKind, Record, RecordKey, Regime, Registration,
    RegistrationStatus, Student,
};
use rand::distributions::{Distribution, WeightedIndex};
use rand::seq::{index, SliceRandom};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthConfig {
    /// Seed of every random choice: the same config always gives the same records.
    pub seed: u64,
    /// Number of distinct students over all years (not every one is present every year).
    pub students: usize,
    /// Academic years (start years), treated as consecutive years; sorted and de-duplicated
    /// by [`University::generate`].
    pub years: Vec<i32>,
    /// Whether to generate results (session 1 of every enrolled unit, for every year but the
    /// last one, which is still in progress).
    pub results: bool,
}

impl SynthConfig {
    /// `students` students over the years 2023 and 2024, without results.
    ///
    /// ```
    /// use conpere_synth::SynthConfig;
    /// let config = SynthConfig { results: true, ..SynthConfig::new(7, 2_000) };
    /// assert_eq!(config.years, [2023, 2024]);
    /// ```
    pub fn new(seed: u64, students: usize) -> Self {
        SynthConfig {
            seed,
            students,
            years: vec![2023, 2024],
            results: false,
        }
    }
}

/// Enrolments of every registration that is not cancelled: two semesters, each with the
/// semester itself, 8 mandatory units and elements and 1 option. Every semester template
/// has exactly 8 units and elements so that this ratio does not depend on the seed.
///
/// A student is followed about 1.7 times over two years (some leave after the first year,
/// some only arrive in the second, 3 % have two registrations, 2 % of registrations are
/// cancelled), so a two-year university has ≈ 34 enrolments per student: 1 000 000
/// enrolments ≈ 29 500 students. [`students_for_enrolments`] computes this for any number
/// of years.
pub const ENROLMENTS_PER_REGISTRATION: usize = 20;

/// The most students a university can have: student numbers must stay 8 digits.
pub const MAX_STUDENTS: usize = 8_000_000;

/// How many students to generate over `years` consecutive years to get about `enrolments`
/// enrolments (the benchmark sizes its university with it).
///
/// It measures the generator itself (the paths of a 2 000-student sample) rather than a
/// formula, so it stays true when the rates change.
///
/// ```
/// use conpere_synth::students_for_enrolments;
/// let students = students_for_enrolments(1_000_000, 2);
/// assert!((25_000..35_000).contains(&students), "{students}");
/// ```
#[must_use]
pub fn students_for_enrolments(enrolments: usize, years: usize) -> usize {
    const SAMPLE: usize = 2_000;
    let sample = University::generate(SynthConfig {
        years: (2023..).take(years).collect(),
        ..SynthConfig::new(0, SAMPLE)
    });
    let registrations: usize = (0..SAMPLE)
        .map(|index| sample.path(index).followed_registrations())
        .sum();
    if registrations == 0 {
        return 0;
    }
    let per_student = (registrations * ENROLMENTS_PER_REGISTRATION) as f64 / SAMPLE as f64;
    (enrolments as f64 / per_student).round() as usize
}

/// A generated university: the course structure of every year, and the recipe of its
/// students (generated on demand by [`University::people`]).
#[derive(Debug, Clone)]
pub struct University {
    config: SynthConfig,
    diplomas: Vec<Diploma>,
    /// The mutualised option of each semester (index 0 = S1), offered by every licence.
    shared_options: Vec<NodeSpec>,
    /// Popularity of each diploma (law and psychology draw more students than musicology).
    diploma_weights: WeightedIndex<u32>,
    numbering: Numbering,
}

/// Example keys of the hard cases, for tests to look for (see [`University::hard_cases`]).
#[derive(Debug, Clone, PartialEq)]
pub struct HardCases {
    /// A student whose names carry accents or ligatures.
    pub accented_student: String,
    /// A student number with a leading zero.
    pub leading_zero_student: String,
    /// Two registrations of the same student the same year: the main one, then the other.
    pub double_registration: [RecordKey; 2],
    /// A cancelled registration (it has no enrolments).
    pub cancelled_registration: RecordKey,
    /// Registrations of the same student to the same step in two consecutive years.
    pub repeater: [RecordKey; 2],
    /// An enrolment carried over from the previous year.
    pub carried_over_enrolment: RecordKey,
    /// An enrolment taken through a choice list (`via` set).
    pub choice_enrolment: RecordKey,
    /// A node offered by several choice lists (several parents).
    pub shared_node: RecordKey,
}

impl University {
    /// Draws the structure and the numbering of a university.
    ///
    /// # Panics
    ///
    /// If `config.students` exceeds [`MAX_STUDENTS`].
    #[must_use]
    pub fn generate(mut config: SynthConfig) -> University {
        assert!(
            config.students <= MAX_STUDENTS,
            "synth: at most {MAX_STUDENTS} students (student numbers have 8 digits)"
        );
        config.years.sort_unstable();
        config.years.dedup();
        let mut rng = stream(config.seed, 0);
        let shared_options: Vec<NodeSpec> = (1..=SEMESTERS).map(shared_option).collect();
        let count = (config.students / STUDENTS_PER_DIPLOMA).clamp(2, DISCIPLINES.len());
        let mut chosen = index::sample(&mut rng, DISCIPLINES.len(), count).into_vec();
        chosen.sort_unstable();
        let diplomas = chosen
            .iter()
            .map(|&d| Builder::new(&mut rng, &DISCIPLINES[d]).diploma(&shared_options))
            .collect();
        let diploma_weights = WeightedIndex::new(chosen.iter().map(|&d| DISCIPLINES[d].weight))
            .expect("discipline weights are positive");
        let numbering = Numbering::draw(&mut rng);
        University {
            config,
            diplomas,
            shared_options,
            diploma_weights,
            numbering,
        }
    }

    /// The configuration, with its years sorted.
    pub fn config(&self) -> &SynthConfig {
        &self.config
    }

    /// Nodes and edges of every year (the same codes every year, so that paths across years
    /// line up).
    pub fn structure(&self) -> impl Iterator<Item = Record> + '_ {
        self.config
            .years
            .iter()
            .flat_map(move |&year| self.structure_of(year))
    }

    /// Students, one after the other, each followed by its registrations, enrolments and
    /// results year by year. Lazy: a student is generated when the iterator reaches it.
    pub fn people(&self) -> impl Iterator<Item = Record> + '_ {
        (0..self.config.students).flat_map(move |index| self.student_records(index))
    }

    /// [`structure`](Self::structure) then [`people`](Self::people): every record.
    pub fn records(&self) -> impl Iterator<Item = Record> + '_ {
        self.structure().chain(self.people())
    }

    /// One example of each hard case, found in the generated records. `None` when the
    /// university is too small to have them all: fewer than 4 students (students 0–3 are
    /// forced to carry them) or fewer than 2 years (no repeater without a second year).
    pub fn hard_cases(&self) -> Option<HardCases> {
        let forced = FORCED_STUDENTS.min(self.config.students);
        let records: Vec<Record> = (0..forced)
            .flat_map(|index| self.student_records(index))
            .collect();
        let registrations: Vec<&Registration> = records
            .iter()
            .filter_map(|r| match r {
                Record::Registration(r) => Some(r),
                _ => None,
            })
            .collect();
        let enrolment_key = |pick: fn(&Enrolment) -> bool| {
            records
                .iter()
                .find(|r| matches!(r, Record::Enrolment(e) if pick(e)))
                .map(Record::key)
        };
        let shared = self.shared_options.first()?;
        Some(HardCases {
            accented_student: find_student(&records, |s| {
                !s.family_name.is_ascii() || !s.given_name.is_ascii()
            })?,
            leading_zero_student: find_student(&records, |s| s.student.starts_with('0'))?,
            double_registration: find_double(&registrations)?,
            cancelled_registration: registrations
                .iter()
                .find(|r| r.status == RegistrationStatus::Cancelled)
                .map(|r| registration_key(r))?,
            repeater: self.find_repeater(&registrations)?,
            carried_over_enrolment: enrolment_key(|e| e.carried_over)?,
            choice_enrolment: enrolment_key(|e| e.via.is_some())?,
            shared_node: shared.record(*self.config.years.first()?).key(),
        })
    }

    fn structure_of(&self, year: i32) -> Vec<Record> {
        let mut out: Vec<Record> = self.shared_options.iter().map(|n| n.record(year)).collect();
        for diploma in &self.diplomas {
            diploma.push_records(year, &mut out);
        }
        out
    }

    /// Every record of one student, from the student's own random stream.
    fn student_records(&self, index: usize) -> Vec<Record> {
        let mut rng = stream(self.config.seed, index as u64 + 1);
        let path = self.draw_path(&mut rng, index);
        let student = self.draw_student(&mut rng, index, &path);
        let id = student.student.clone();
        let mut out = vec![Record::Student(student)];
        for k in 0..path.stays.len() {
            self.push_year(&mut rng, &mut out, &id, &path, k);
        }
        out
    }

    /// The path of a student alone (what [`students_for_enrolments`] samples).
    fn path(&self, index: usize) -> Path {
        self.draw_path(&mut stream(self.config.seed, index as u64 + 1), index)
    }

    fn draw_path(&self, rng: &mut ChaCha8Rng, index: usize) -> Path {
        let forced = Forced::of(index);
        let diploma = self.diploma_weights.sample(rng);
        let double = rng.gen_bool(rate::DOUBLE) || forced == Forced::Double;
        let second =
            double.then(|| (diploma + rng.gen_range(1..self.diplomas.len())) % self.diplomas.len());
        let regime = pick(rng, &rate::REGIMES);
        let special_statuses = draw_special_statuses(rng);
        let (entry, mut level) = self.draw_entry(rng, forced);
        let mut stays = Vec::new();
        let (mut repeat, mut carried) = (false, 0);
        for year_index in entry..self.config.years.len() {
            let status = forced
                .status(year_index)
                .unwrap_or_else(|| pick(rng, &rate::STATUSES));
            stays.push(Stay {
                year_index,
                level,
                status,
                repeat,
                carried,
            });
            (repeat, carried) = (false, 0);
            match next_move(rng, forced, year_index, status, level) {
                Move::Again => {}
                Move::Repeat(mask) => (repeat, carried) = (true, mask),
                Move::Progress => level += 1,
                Move::Leave => break,
            }
        }
        Path {
            diploma,
            second,
            regime,
            special_statuses,
            stays,
        }
    }

    /// First year and level: most students are there from the first year, at any level;
    /// each later year brings a cohort of new L1 students.
    fn draw_entry(&self, rng: &mut ChaCha8Rng, forced: Forced) -> (usize, usize) {
        if forced != Forced::None {
            return (0, 0);
        }
        let later = self.config.years.len().saturating_sub(1);
        if later == 0 || rng.gen_bool(1.0 / (1.0 + rate::NEW_COHORT * later as f64)) {
            (0, pick(rng, &rate::LEVELS))
        } else {
            (rng.gen_range(1..=later), 0)
        }
    }

    fn draw_student(&self, rng: &mut ChaCha8Rng, index: usize, path: &Path) -> Student {
        let forced = Forced::of(index) != Forced::None;
        let name = if Forced::of(index) == Forced::Accented {
            Name::accented()
        } else {
            self.numbering.name(index)
        };
        let birth_date = path.stays.first().map(|first| {
            let entry_year = self.config.years[first.year_index];
            draw_birth_date(rng, entry_year, first.level, path.stays.len())
        });
        let ine = (rng.gen_bool(rate::INE) || forced).then(|| self.numbering.ine(index));
        let usual_name = rng
            .gen_bool(rate::USUAL_NAME)
            .then(|| *FAMILY_NAMES.choose(rng).expect("the pool is not empty"))
            .filter(|usual| *usual != name.family)
            .map(str::to_string);
        let account = !rng.gen_bool(rate::NO_ACCOUNT) || forced;
        Student {
            student: self.numbering.student_id(index),
            ine,
            family_name: name.family.to_string(),
            usual_name,
            given_name: name.given.to_string(),
            birth_date,
            email: account.then(|| name.email()),
            login: account.then(|| name.login()),
        }
    }

    /// Registrations of one year of a path, with their enrolments and results.
    fn push_year(
        &self,
        rng: &mut ChaCha8Rng,
        out: &mut Vec<Record>,
        student: &str,
        path: &Path,
        k: usize,
    ) {
        let stay = &path.stays[k];
        let year_index = stay.year_index;
        // A repeater passed the units they carry over and failed the others.
        let verdict = path
            .stays
            .get(k + 1)
            .filter(|s| s.repeat)
            .map(|s| s.carried);
        let registrations =
            std::iter::once((path.diploma, true)).chain(path.second.map(|d| (d, false)));
        for (diploma, main) in registrations {
            let diploma = &self.diplomas[diploma];
            let follow = Follow {
                year: self.config.years[year_index],
                student,
                step: &diploma.steps[stay.level],
                main,
                carried: if main && stay.repeat { stay.carried } else { 0 },
                verdict: verdict.filter(|_| main),
                results: self.config.results && year_index + 1 < self.config.years.len(),
            };
            out.push(follow.registration(diploma, stay.status, path));
            if stay.status != RegistrationStatus::Cancelled {
                follow.push_enrolments(rng, out);
            }
        }
    }

    fn find_repeater(&self, registrations: &[&Registration]) -> Option<[RecordKey; 2]> {
        let next_year = |year: i32| {
            let years = &self.config.years;
            years
                .iter()
                .position(|&y| y == year)
                .and_then(|i| years.get(i + 1))
                .copied()
        };
        let mut followed = registrations
            .iter()
            .filter(|r| r.status != RegistrationStatus::Cancelled);
        followed.find_map(|first| {
            let again = registrations.iter().find(|r| {
                r.student == first.student
                    && r.step == first.step
                    && Some(r.year) == next_year(first.year)
            })?;
            Some([registration_key(first), registration_key(again)])
        })
    }
}

// ---------------------------------------------------------------------------------------
// Rates and pools
// ---------------------------------------------------------------------------------------

/// Shares of the population, in one place so that the module documentation stays true.
mod rate {
    use conpere_model::{Regime, RegistrationStatus};

    /// Weight of each later year's new L1 cohort, relative to the first year's population.
    pub const NEW_COHORT: f64 = 0.12;
    /// Level (0 = L1) of the students present in the first year.
    pub const LEVELS: [(usize, u32); 3] = [(0, 42), (1, 32), (2, 26)];
    /// Students who repeat their step the next year.
    pub const REPEAT: f64 = 0.10;
    /// Students who leave before L3 (L3 students who pass graduate and leave anyway).
    pub const DROPOUT: f64 = 0.03;
    /// Students with a second registration in another licence.
    pub const DOUBLE: f64 = 0.03;
    /// Registration statuses, per mille.
    pub const STATUSES: [(RegistrationStatus, u32); 3] = [
        (RegistrationStatus::Active, 970),
        (RegistrationStatus::Cancelled, 20),
        (RegistrationStatus::Pending, 10),
    ];
    /// Régimes, per cent.
    pub const REGIMES: [(Regime, u32); 4] = [
        (Regime::Initial, 90),
        (Regime::Continuing, 6),
        (Regime::Apprenticeship, 3),
        (Regime::Other, 1),
    ];
    /// Canonical special statuses and their shares (a double registration is told by `main`,
    /// never by a status: none follows from it).
    pub const SPECIAL_STATUSES: [(&str, f64); 4] = [
        ("employed", 0.06),
        ("high_level_athlete", 0.01),
        ("disability", 0.03),
        ("distance", 0.02),
    ];
    /// Statuses that SIS record as the student's one "profile" of the year (Apogée
    /// `profil`, Pégase `profilsSpecifiques`): a student has at most one of them.
    pub const PROFILE_STATUSES: [(&str, f64); 4] = [
        ("artist", 0.005),
        ("carer", 0.005),
        ("elected_representative", 0.005),
        ("civic_service", 0.005),
    ];
    /// Students with an SIS profile that the university maps to `other:<code>` (DESIGN.md:
    /// only a code a university maps so; adapters' tests configure these codes).
    pub const OTHER_STATUS: f64 = 0.005;
    /// Codes of those unmapped statuses.
    pub const OTHER_CODES: [&str; 3] = ["ERASMUS", "SDIS", "ENTREP"];
    /// A repeater's units carried over from the previous year.
    pub const CARRIED: f64 = 0.4;
    /// Enrolments in a unit or element the student is exempted from.
    pub const EXEMPTED: f64 = 0.01;
    /// Units passed at the first session.
    pub const PASS: f64 = 0.8;
    /// Students with an INE (the others came from abroad or their INE was not captured).
    pub const INE: f64 = 0.97;
    /// Students with a usual name.
    pub const USUAL_NAME: f64 = 0.03;
    /// Students without an e-mail address or login (account not opened yet).
    pub const NO_ACCOUNT: f64 = 0.01;
    /// One student number in this many has a leading zero (the forced student 3 among them).
    pub const LEADING_ZERO_EVERY: usize = 40;
}

/// One licence mention: its code (3 letters, part of every code of its structure), label,
/// popularity and the topics of its units.
struct Discipline {
    code: &'static str,
    label: &'static str,
    weight: u32,
    topics: [&'static str; 8],
}

const fn discipline(
    code: &'static str,
    label: &'static str,
    weight: u32,
    topics: [&'static str; 8],
) -> Discipline {
    Discipline {
        code,
        label,
        weight,
        topics,
    }
}

#[rustfmt::skip]
const DISCIPLINES: [Discipline; 17] = [
    discipline("INF", "Informatique", 2, ["Algorithmique", "Programmation impérative", "Architecture des ordinateurs", "Bases de données", "Systèmes d'exploitation", "Réseaux", "Génie logiciel", "Théorie des langages"]),
    discipline("MAT", "Mathématiques", 1, ["Algèbre linéaire", "Analyse réelle", "Probabilités", "Statistique", "Géométrie", "Topologie", "Arithmétique", "Calcul différentiel"]),
    discipline("PCH", "Physique-Chimie", 1, ["Mécanique du point", "Chimie générale", "Électromagnétisme", "Thermodynamique", "Optique géométrique", "Chimie organique", "Physique quantique", "Spectroscopie"]),
    discipline("SVI", "Sciences de la vie", 2, ["Biologie cellulaire", "Génétique", "Biochimie", "Écologie", "Physiologie animale", "Biologie végétale", "Microbiologie", "Évolution"]),
    discipline("ECO", "Économie-Gestion", 3, ["Économie générale", "Microéconomie", "Macroéconomie", "Comptabilité générale", "Gestion financière", "Marketing", "Économétrie", "Droit des affaires"]),
    discipline("DRO", "Droit", 4, ["Droit constitutionnel", "Droit civil", "Introduction au droit", "Droit administratif", "Droit pénal", "Histoire du droit", "Droit des obligations", "Droit européen"]),
    discipline("LMO", "Lettres modernes", 1, ["Littérature française", "Grammaire et stylistique", "Littérature comparée", "Langue et littérature médiévales", "Poésie", "Théâtre", "Roman du XIXe siècle", "Latin"]),
    discipline("HIS", "Histoire", 1, ["Histoire ancienne", "Histoire médiévale", "Histoire moderne", "Histoire contemporaine", "Historiographie", "Paléographie", "Histoire de l'art", "Archéologie"]),
    discipline("GEO", "Géographie", 1, ["Géographie physique", "Géographie humaine", "Cartographie", "Géomatique", "Climatologie", "Aménagement du territoire", "Géographie urbaine", "Géopolitique"]),
    discipline("PSY", "Psychologie", 3, ["Psychologie du développement", "Psychologie sociale", "Neurosciences", "Psychologie cognitive", "Psychopathologie", "Méthodes statistiques", "Psychologie clinique", "Éthologie"]),
    discipline("STA", "STAPS", 3, ["Physiologie de l'exercice", "Anatomie fonctionnelle", "Sciences sociales du sport", "Entraînement sportif", "Biomécanique", "Pratiques sportives", "Psychologie du sport", "Management du sport"]),
    discipline("LEA", "Langues étrangères appliquées", 2, ["Anglais économique", "Espagnol appliqué", "Traduction", "Civilisation britannique", "Civilisation hispanique", "Commerce international", "Interprétation", "Terminologie"]),
    discipline("SOC", "Sociologie", 1, ["Sociologie générale", "Démographie", "Méthodes d'enquête", "Sociologie urbaine", "Sociologie du travail", "Anthropologie", "Sociologie politique", "Statistiques sociales"]),
    discipline("ARP", "Arts plastiques", 1, ["Pratique plastique", "Histoire de l'art contemporain", "Dessin", "Photographie", "Esthétique", "Sculpture", "Vidéo et image numérique", "Scénographie"]),
    discipline("MUS", "Musicologie", 1, ["Formation musicale", "Harmonie", "Histoire de la musique", "Analyse musicale", "Écriture", "Chant choral", "Ethnomusicologie", "Acoustique musicale"]),
    discipline("PHI", "Philosophie", 1, ["Philosophie générale", "Histoire de la philosophie", "Logique", "Éthique", "Philosophie des sciences", "Métaphysique", "Philosophie politique", "Esthétique"]),
    discipline("SDE", "Sciences de l'éducation", 1, ["Histoire de l'éducation", "Psychologie de l'apprentissage", "Sociologie de l'éducation", "Didactique", "Philosophie de l'éducation", "Politiques éducatives", "Éducation comparée", "Pédagogie numérique"]),
];

/// The last mandatory unit of each semester (S1..S6), common to every licence.
const TRANSVERSAL: [&str; SEMESTERS] = [
    "Méthodologie du travail universitaire",
    "Langue vivante : anglais",
    "Projet personnel et professionnel",
    "Anglais renforcé",
    "Préprofessionnalisation",
    "Projet tutoré",
];

/// Labels of a licence's own "UE d'ouverture" options.
const OPEN_OPTIONS: [&str; 16] = [
    "Langue des signes française",
    "Culture numérique",
    "Éloquence et prise de parole",
    "Développement durable",
    "Espagnol",
    "Allemand",
    "Italien",
    "Chinois",
    "Théâtre et expression",
    "Photographie argentique",
    "Initiation au droit",
    "Économie sociale et solidaire",
    "Égalité femmes-hommes",
    "Écriture créative",
    "Astronomie",
    "Citoyenneté européenne",
];

/// Course elements of a unit, in order.
const ELEMENT_PARTS: [&str; 3] = ["cours magistral", "travaux dirigés", "travaux pratiques"];

/// Family names: accents, ligatures, particles, apostrophes, compound names. Their ASCII
/// foldings are distinct, and so are their first 7 letters (logins stay unique).
#[rustfmt::skip]
const FAMILY_NAMES: [&str; 44] = [
    "Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy",
    "Moreau", "Simon", "Laurent", "Lefèvre", "Michel", "Garçon", "Bénard", "Lemaître", "Noël",
    "Fournier", "Girard", "Bonnet", "Dupont-Aignan", "de La Fontaine", "Mercier", "Guérin",
    "Faure", "André", "Chevalier", "François", "Gauthier", "Perrin", "Rousseau", "Clément",
    "Œuvrard", "Ménard", "Brûlé", "Besançon", "N'Diaye", "D'Almeida", "Nguyen", "Da Silva",
    "Le Goff", "Saint-Exupéry", "Hébert",
];

/// Given names, with accents, diaereses and compound names.
#[rustfmt::skip]
const GIVEN_NAMES: [&str; 40] = [
    "Zoé", "Anaïs", "Maëlle", "Loïc", "Hélène", "Jérôme", "François", "Chloé", "Benoît", "Léa",
    "Inès", "Théo", "Raphaël", "Gaëlle", "Joël", "Noémie", "Aurélien", "Cécile", "Élodie",
    "Amélie", "Clément", "Mathéo", "Océane", "Jean-François", "Marie-Ève", "Héloïse",
    "Sébastien", "Thaïs", "Emma", "Lucas", "Hugo", "Camille", "Louis", "Manon", "Nathan",
    "Sarah", "Yanis", "Lina", "Adam", "Jade",
];

/// Student 3's name, outside the pools so that its e-mail and login stay unique.
const ACCENTED_NAME: (&str, &str) = ("Cœurderoy", "Maëlle");

/// Domain of the students' e-mail addresses.
const EMAIL_DOMAIN: &str = "etu.univ-exemple.fr";

// ---------------------------------------------------------------------------------------
// Course structure
// ---------------------------------------------------------------------------------------

/// Semesters of a licence (three steps of two).
const SEMESTERS: usize = 6;
/// Version of every diploma and step (Apogée COD_VRS_VDI / COD_VRS_VET: 3 digits).
const VERSION: &str = "120";
/// A diploma per this many students (at least 2, at most one per discipline).
const STUDENTS_PER_DIPLOMA: usize = 400;
/// ECTS of a choice list and of each of its options.
const OPTION_ECTS: f64 = 3.0;
/// Options of a choice list that belong to the licence (the last one is shared).
const OWN_OPTIONS: usize = 2;

/// A semester's mandatory units: their ECTS (27, plus the option's 3 = 30) and how many
/// elements each has (shuffled). Both templates have 8 units and elements, which keeps
/// [`ENROLMENTS_PER_REGISTRATION`] exact.
struct Template {
    ects: &'static [f64],
    elements: &'static [usize],
}

const TEMPLATES: [Template; 2] = [
    Template {
        ects: &[9.0, 6.0, 6.0, 6.0],
        elements: &[2, 2, 0, 0],
    },
    Template {
        ects: &[9.0, 9.0, 9.0],
        elements: &[3, 2, 0],
    },
];

/// A node of the structure, with its id ready to be cloned into enrolments.
#[derive(Debug, Clone)]
struct NodeSpec {
    id: String,
    kind: NodeKind,
    code: String,
    version: Option<&'static str>,
    label: String,
    ects: Option<f64>,
    period: Option<String>,
}

impl NodeSpec {
    /// An Apogée ELP (semester, unit, element) taught in semester `semester`.
    fn elp(
        kind: NodeKind,
        code: String,
        label: String,
        ects: Option<f64>,
        semester: usize,
    ) -> Self {
        NodeSpec {
            id: format!("ELP:{code}"),
            kind,
            code,
            version: None,
            label,
            ects,
            period: Some(format!("S{semester}")),
        }
    }

    /// An Apogée versioned object (`VDI`, `VET`).
    fn versioned(prefix: &str, kind: NodeKind, code: String, label: String, ects: f64) -> Self {
        NodeSpec {
            id: format!("{prefix}:{code}/{VERSION}"),
            kind,
            code,
            version: Some(VERSION),
            label,
            ects: Some(ects),
            period: None,
        }
    }

    fn record(&self, year: i32) -> Record {
        Record::Node(Node {
            year,
            node: self.id.clone(),
            kind: self.kind,
            code: self.code.clone(),
            version: self.version.map(str::to_string),
            label: self.label.clone(),
            ects: self.ects,
            period: self.period.clone(),
        })
    }

    /// The mandatory edge from `self` to `child`, at `position` among its siblings.
    fn edge_to(&self, year: i32, child: &NodeSpec, position: usize) -> Edge {
        Edge {
            year,
            parent: self.id.clone(),
            child: child.id.clone(),
            mandatory: true,
            min: None,
            max: None,
            position: Some(position as i32),
        }
    }
}

/// The option of semester `number` that every licence's choice list offers.
fn shared_option(number: usize) -> NodeSpec {
    let label = if number % 2 == 1 {
        "Pratique sportive"
    } else {
        "Engagement étudiant et citoyen"
    };
    NodeSpec::elp(
        NodeKind::Unit,
        format!("UELIBRE{number}"),
        label.to_string(),
        Some(OPTION_ECTS),
        number,
    )
}

#[derive(Debug, Clone)]
struct Diploma {
    node: NodeSpec,
    steps: Vec<Step>,
}

#[derive(Debug, Clone)]
struct Step {
    node: NodeSpec,
    semesters: Vec<Semester>,
}

#[derive(Debug, Clone)]
struct Semester {
    node: NodeSpec,
    units: Vec<Unit>,
    choice: NodeSpec,
    /// The licence's own options, then the shared one.
    options: Vec<NodeSpec>,
}

#[derive(Debug, Clone)]
struct Unit {
    node: NodeSpec,
    elements: Vec<NodeSpec>,
}

/// A node of the tree and what hangs below it.
trait Part {
    fn spec(&self) -> &NodeSpec;

    /// Nodes and edges of the part's descendants.
    fn push_below(&self, _year: i32, _out: &mut Vec<Record>) {}
}

/// Each child's node, its edge from `parent`, then its descendants.
fn push_children(year: i32, out: &mut Vec<Record>, parent: &NodeSpec, children: &[impl Part]) {
    for (position, child) in children.iter().enumerate() {
        out.push(child.spec().record(year));
        out.push(Record::Edge(parent.edge_to(
            year,
            child.spec(),
            position + 1,
        )));
        child.push_below(year, out);
    }
}

impl Diploma {
    fn push_records(&self, year: i32, out: &mut Vec<Record>) {
        out.push(self.node.record(year));
        push_children(year, out, &self.node, &self.steps);
    }
}

impl Part for NodeSpec {
    fn spec(&self) -> &NodeSpec {
        self
    }
}

impl Part for Step {
    fn spec(&self) -> &NodeSpec {
        &self.node
    }

    fn push_below(&self, year: i32, out: &mut Vec<Record>) {
        push_children(year, out, &self.node, &self.semesters);
        // Choice lists hang from the step, after the semesters: that is where SIS such as
        // Apogée show them (the first-level lists of a step), so every adapter can carry
        // them. The range sits on the edge to the list: pick exactly one option.
        for (i, semester) in self.semesters.iter().enumerate() {
            semester.push_choice(year, out, self.semesters.len() + i + 1, &self.node);
        }
    }
}

impl Semester {
    fn push_choice(&self, year: i32, out: &mut Vec<Record>, position: usize, step: &NodeSpec) {
        out.push(self.choice.record(year));
        out.push(Record::Edge(Edge {
            min: Some(1),
            max: Some(1),
            ..step.edge_to(year, &self.choice, position)
        }));
        for (position, option) in self.options.iter().enumerate() {
            // The shared option's node is written once per year, by the university.
            if position < OWN_OPTIONS {
                out.push(option.record(year));
            }
            out.push(Record::Edge(Edge {
                mandatory: false,
                ..self.choice.edge_to(year, option, position + 1)
            }));
        }
    }
}

impl Part for Unit {
    fn spec(&self) -> &NodeSpec {
        &self.node
    }

    fn push_below(&self, year: i32, out: &mut Vec<Record>) {
        push_children(year, out, &self.node, &self.elements);
    }
}

impl Part for Semester {
    fn spec(&self) -> &NodeSpec {
        &self.node
    }

    fn push_below(&self, year: i32, out: &mut Vec<Record>) {
        push_children(year, out, &self.node, &self.units);
    }
}

/// Draws the structure of one licence from the structure's random stream.
struct Builder<'a> {
    rng: &'a mut ChaCha8Rng,
    discipline: &'static Discipline,
    /// Discipline units drawn so far: topics cycle, numbered on each round ("Analyse 2").
    slot: usize,
}

impl<'a> Builder<'a> {
    fn new(rng: &'a mut ChaCha8Rng, discipline: &'static Discipline) -> Self {
        Builder {
            rng,
            discipline,
            slot: 0,
        }
    }

    fn diploma(mut self, shared: &[NodeSpec]) -> Diploma {
        let d = self.discipline;
        Diploma {
            node: NodeSpec::versioned(
                "VDI",
                NodeKind::Diploma,
                format!("LIC-{}", d.code),
                format!("Licence {}", d.label),
                180.0,
            ),
            steps: (1..=3).map(|level| self.step(level, shared)).collect(),
        }
    }

    fn step(&mut self, level: usize, shared: &[NodeSpec]) -> Step {
        let d = self.discipline;
        let ordinal = if level == 1 {
            "1re".to_string()
        } else {
            format!("{level}e")
        };
        Step {
            node: NodeSpec::versioned(
                "VET",
                NodeKind::Step,
                format!("L{level}{}", d.code),
                format!("Licence {ordinal} année {}", d.label),
                60.0,
            ),
            semesters: [2 * level - 1, 2 * level]
                .iter()
                .map(|&number| self.semester(number, &shared[number - 1]))
                .collect(),
        }
    }

    fn semester(&mut self, number: usize, shared: &NodeSpec) -> Semester {
        let d = self.discipline;
        let template = TEMPLATES.choose(self.rng).expect("templates exist");
        let mut elements = template.elements.to_vec();
        elements.shuffle(self.rng);
        let units = (0..template.ects.len())
            .map(|u| self.unit(number, u, template.ects, elements[u]))
            .collect();
        let code = format!("{}{number}OUV", d.code);
        let choice = NodeSpec {
            id: format!("LSE:{code}"),
            kind: NodeKind::Choice,
            code,
            version: None,
            label: format!("UE d'ouverture — semestre {number}"),
            // A list is a grouping: credits and period belong to its options.
            ects: None,
            period: None,
        };
        let mut options: Vec<NodeSpec> = index::sample(self.rng, OPEN_OPTIONS.len(), OWN_OPTIONS)
            .iter()
            .enumerate()
            .map(|(o, label)| {
                let code = format!("{}{number}O{}", d.code, o + 1);
                NodeSpec::elp(
                    NodeKind::Unit,
                    code,
                    OPEN_OPTIONS[label].to_string(),
                    Some(OPTION_ECTS),
                    number,
                )
            })
            .collect();
        options.push(shared.clone());
        Semester {
            node: NodeSpec::elp(
                NodeKind::Semester,
                format!("{}S{number}", d.code),
                format!("Semestre {number} — {}", d.label),
                Some(30.0),
                number,
            ),
            units,
            choice,
            options,
        }
    }

    /// Unit `u` of semester `number`; the last one is the semester's transversal unit.
    fn unit(&mut self, number: usize, u: usize, ects: &[f64], elements: usize) -> Unit {
        let label = if u + 1 == ects.len() {
            TRANSVERSAL[number - 1].to_string()
        } else {
            let topics = &self.discipline.topics;
            let label = format!(
                "{} {}",
                topics[self.slot % topics.len()],
                self.slot / topics.len() + 1
            );
            self.slot += 1;
            label
        };
        let code = format!("{}{number}U{}", self.discipline.code, u + 1);
        // Half the split units give each element its share of ECTS, the others none.
        let element_ects = self
            .rng
            .gen_bool(0.5)
            .then(|| ects[u] / elements.max(1) as f64);
        let elements = (0..elements)
            .map(|e| {
                NodeSpec::elp(
                    NodeKind::Element,
                    format!("{code}{}", char::from(b'A' + e as u8)),
                    format!("{label} : {}", ELEMENT_PARTS[e]),
                    element_ects,
                    number,
                )
            })
            .collect();
        Unit {
            node: NodeSpec::elp(NodeKind::Unit, code, label, Some(ects[u]), number),
            elements,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Students
// ---------------------------------------------------------------------------------------

/// Students 0–3 are forced to carry the hard cases, so that tiny universities have them.
const FORCED_STUDENTS: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Forced {
    None,
    /// Student 0: L1 with a second registration in another licence.
    Double,
    /// Student 1: cancelled the first year, registered again the next.
    Cancelled,
    /// Student 2: L1 repeated, with unit 1 of S1 carried over and unit 2 not.
    Repeater,
    /// Student 3: accented name (and, by numbering, a leading-zero student number).
    Accented,
}

impl Forced {
    fn of(index: usize) -> Forced {
        match index {
            0 => Forced::Double,
            1 => Forced::Cancelled,
            2 => Forced::Repeater,
            3 => Forced::Accented,
            _ => Forced::None,
        }
    }

    /// A forced student's status: active, but for student 1's first year.
    fn status(self, year_index: usize) -> Option<RegistrationStatus> {
        match (self, year_index) {
            (Forced::None, _) => None,
            (Forced::Cancelled, 0) => Some(RegistrationStatus::Cancelled),
            _ => Some(RegistrationStatus::Active),
        }
    }
}

/// The years a student is present, drawn before anything else about them.
#[derive(Debug, Clone)]
struct Path {
    /// Index of the main registration's diploma.
    diploma: usize,
    /// Index of the second registration's diploma (same level), every year.
    second: Option<usize>,
    regime: Regime,
    /// Sorted.
    special_statuses: Vec<String>,
    /// Consecutive years, from the first one present.
    stays: Vec<Stay>,
}

impl Path {
    /// Registrations that have enrolments.
    fn followed_registrations(&self) -> usize {
        let per_year = 1 + usize::from(self.second.is_some());
        let followed = self
            .stays
            .iter()
            .filter(|s| s.status != RegistrationStatus::Cancelled)
            .count();
        followed * per_year
    }
}

#[derive(Debug, Clone)]
struct Stay {
    year_index: usize,
    /// 0 = L1.
    level: usize,
    status: RegistrationStatus,
    /// Same step as the year before, which was followed.
    repeat: bool,
    /// Units carried over from the year before: bit `4 × semester + unit`.
    carried: u8,
}

/// What a student does the next year.
enum Move {
    /// Registers again to the same step after a cancellation (nothing to carry).
    Again,
    /// Repeats the step, carrying over these units.
    Repeat(u8),
    Progress,
    /// Graduates (after L3) or drops out.
    Leave,
}

fn next_move(
    rng: &mut ChaCha8Rng,
    forced: Forced,
    year_index: usize,
    status: RegistrationStatus,
    level: usize,
) -> Move {
    if status == RegistrationStatus::Cancelled {
        return Move::Again;
    }
    let forced_repeat = forced == Forced::Repeater && year_index == 0;
    if rng.gen_bool(rate::REPEAT) || forced_repeat {
        let mask = carried_mask(rng);
        return Move::Repeat(if forced_repeat {
            (mask | 0b01) & !0b10
        } else {
            mask
        });
    }
    if level == 2 || rng.gen_bool(rate::DROPOUT) {
        Move::Leave
    } else {
        Move::Progress
    }
}

/// The bit of unit `unit` of the step's semester `semester` (0 or 1) in a carried mask.
fn unit_bit(semester: usize, unit: usize) -> u8 {
    1 << (semester * 4 + unit)
}

fn carried_mask(rng: &mut ChaCha8Rng) -> u8 {
    (0..8)
        .filter(|_| rng.gen_bool(rate::CARRIED))
        .fold(0, |mask, bit| mask | 1 << bit)
}

fn draw_special_statuses(rng: &mut ChaCha8Rng) -> Vec<String> {
    let mut statuses: Vec<String> = rate::SPECIAL_STATUSES
        .iter()
        .filter(|(_, share)| rng.gen_bool(*share))
        .map(|(status, _)| status.to_string())
        .collect();
    // At most one profile: the first drawn of the profile statuses, then `other:<code>`.
    let profile = rate::PROFILE_STATUSES
        .iter()
        .find(|(_, share)| rng.gen_bool(*share))
        .map(|(status, _)| status.to_string())
        .or_else(|| {
            rng.gen_bool(rate::OTHER_STATUS).then(|| {
                let code = rate::OTHER_CODES.choose(rng).expect("codes exist");
                format!("other:{code}")
            })
        });
    statuses.extend(profile);
    statuses.sort();
    statuses
}

/// A value drawn from a table of (value, weight).
fn pick<T: Copy>(rng: &mut ChaCha8Rng, table: &[(T, u32)]) -> T {
    table
        .choose_weighted(rng, |(_, weight)| *weight)
        .expect("weights are positive")
        .0
}

/// Usual lag behind the on-time age (gap years, reorientations, repeats before).
const AGE_LAG: [i32; 10] = [0, 0, 0, 0, 0, 1, 1, 1, 2, 4];

/// A birth date that makes the student 18 at the start of L1 when on time, one more per
/// level, plus a lag, and keeps them within 18–25 every year they are present.
fn draw_birth_date(rng: &mut ChaCha8Rng, entry_year: i32, level: usize, years: usize) -> NaiveDate {
    let lag = *AGE_LAG.choose(rng).expect("lags exist");
    let oldest = (26 - years as i32).max(18);
    let age = (18 + level as i32 + lag).clamp(18, oldest);
    // Aged `age` on 1 September: born between 2 September and 1 September a year later.
    let earliest = NaiveDate::from_ymd_opt(entry_year - age - 1, 9, 2).expect("a valid date");
    earliest + Days::new(rng.gen_range(0..365))
}

/// Student numbers, INEs and names: bijections of the student index, so they are unique
/// without remembering anything, shifted by the seed.
#[derive(Debug, Clone)]
struct Numbering {
    id_offset: usize,
    ine_offset: u64,
    name_offset: usize,
    /// Coprime with the number of name combinations: scatters consecutive students.
    name_stride: usize,
}

const INE_SPACE: u64 = 10_000_000_000;
/// Coprime with [`INE_SPACE`] (odd, not a multiple of 5): `index → index × it` is a bijection.
const INE_MULTIPLIER: u64 = 7_919_393;
const NAME_COMBINATIONS: usize = FAMILY_NAMES.len() * GIVEN_NAMES.len();

impl Numbering {
    fn draw(rng: &mut ChaCha8Rng) -> Self {
        let name_stride = loop {
            let stride = rng.gen_range(1..NAME_COMBINATIONS);
            if gcd(stride, NAME_COMBINATIONS) == 1 {
                break stride;
            }
        };
        Numbering {
            id_offset: rng.gen_range(0..1_000_000),
            ine_offset: rng.gen_range(0..INE_SPACE),
            name_offset: rng.gen_range(0..NAME_COMBINATIONS),
            name_stride,
        }
    }

    /// Sequential numbers like a SIS's, in two disjoint ranges: most start with 2 (Apogée
    /// style); one in 40 starts with 0 (Pégase keeps the leading zeros of codeApprenant).
    /// With fewer than [`MAX_STUDENTS`] the first range stays below 10 000 000.
    fn student_id(&self, index: usize) -> String {
        let base = if index % rate::LEADING_ZERO_EVERY == 3 {
            1_000_000
        } else {
            20_000_000
        };
        format!("{:08}", base + self.id_offset + index)
    }

    /// 10 digits and a letter.
    fn ine(&self, index: usize) -> String {
        let digits = (index as u64 * INE_MULTIPLIER + self.ine_offset) % INE_SPACE;
        let letter = char::from(b'A' + (digits % 26) as u8);
        format!("{digits:010}{letter}")
    }

    /// Index → (combination, round) is a bijection; the combination → (family, given) too.
    fn name(&self, index: usize) -> Name {
        let k = index + self.name_offset;
        let combination = (k % NAME_COMBINATIONS) * self.name_stride % NAME_COMBINATIONS;
        let (family, column) = (
            combination % FAMILY_NAMES.len(),
            combination / FAMILY_NAMES.len(),
        );
        Name {
            family: FAMILY_NAMES[family],
            given: GIVEN_NAMES[(family + column) % GIVEN_NAMES.len()],
            round: k / NAME_COMBINATIONS,
        }
    }
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// A student's names. Every pair of names comes back once per round of all the pairs; the
/// round number keeps e-mails and logins unique, as account-creation scripts do.
struct Name {
    family: &'static str,
    given: &'static str,
    round: usize,
}

impl Name {
    fn accented() -> Name {
        Name {
            family: ACCENTED_NAME.0,
            given: ACCENTED_NAME.1,
            round: 0,
        }
    }

    /// `given.family@…`, folded to ASCII, without spaces or apostrophes.
    fn email(&self) -> String {
        format!(
            "{}.{}{}@{EMAIL_DOMAIN}",
            fold(self.given),
            fold(self.family),
            number_suffix(self.round)
        )
    }

    /// The first 7 letters of the family name and the given name's initial (`lefevrez`),
    /// numbered when an earlier given name of the pool has the same initial (`lefevrez1`).
    fn login(&self) -> String {
        let family: String = fold(self.family)
            .chars()
            .filter(char::is_ascii_lowercase)
            .take(7)
            .collect();
        let initial = |name: &str| fold(name).chars().next().unwrap_or('x');
        let namesakes = GIVEN_NAMES
            .iter()
            .take_while(|&&g| g != self.given)
            .filter(|g| initial(g) == initial(self.given))
            .count();
        let number = namesakes + GIVEN_NAMES.len() * self.round;
        format!("{family}{}{}", initial(self.given), number_suffix(number))
    }
}

fn number_suffix(n: usize) -> String {
    if n == 0 {
        String::new()
    } else {
        n.to_string()
    }
}

/// Lower-case ASCII: accents dropped, ligatures spelt out, spaces and apostrophes removed,
/// hyphens kept.
fn fold(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars().flat_map(char::to_lowercase) {
        match c {
            'à' | 'â' | 'ä' => out.push('a'),
            'é' | 'è' | 'ê' | 'ë' => out.push('e'),
            'î' | 'ï' => out.push('i'),
            'ô' | 'ö' => out.push('o'),
            'ù' | 'û' | 'ü' => out.push('u'),
            'ÿ' => out.push('y'),
            'ç' => out.push('c'),
            'œ' => out.push_str("oe"),
            'æ' => out.push_str("ae"),
            c if c.is_ascii_alphanumeric() || c == '-' => out.push(c),
            _ => {}
        }
    }
    out
}

/// One registration of a student for a year, and what it takes to write its enrolments.
struct Follow<'a> {
    year: i32,
    student: &'a str,
    step: &'a Step,
    /// A second registration never takes the shared option: results are keyed without the
    /// step, so the same option in both registrations would give two results with one key.
    main: bool,
    /// Units carried over (bits as in [`unit_bit`]).
    carried: u8,
    /// When the student repeats next year: the units they pass (the others fail).
    verdict: Option<u8>,
    results: bool,
}

impl Follow<'_> {
    fn registration(&self, diploma: &Diploma, status: RegistrationStatus, path: &Path) -> Record {
        Record::Registration(Registration {
            year: self.year,
            student: self.student.to_string(),
            step: self.step.node.id.clone(),
            diploma: Some(diploma.node.id.clone()),
            status,
            regime: path.regime,
            main: self.main,
            special_statuses: path.special_statuses.clone(),
        })
    }

    /// Enrolments (then results) of the step's two semesters.
    fn push_enrolments(&self, rng: &mut ChaCha8Rng, out: &mut Vec<Record>) {
        let mut results = Vec::new();
        for (s, semester) in self.step.semesters.iter().enumerate() {
            out.push(self.enrolment(&semester.node, None, false, false));
            for (u, unit) in semester.units.iter().enumerate() {
                let carried = self.carried & unit_bit(s, u) != 0;
                for node in std::iter::once(&unit.node).chain(&unit.elements) {
                    let exempted = !carried && rng.gen_bool(rate::EXEMPTED);
                    out.push(self.enrolment(node, None, carried, exempted));
                }
                let pass = self.verdict.map(|passed| passed & unit_bit(s, u) != 0);
                self.push_result(rng, &mut results, &unit.node, pass);
            }
            let offered = if self.main {
                &semester.options[..]
            } else {
                &semester.options[..OWN_OPTIONS]
            };
            let option = offered.choose(rng).expect("a choice list has options");
            out.push(self.enrolment(option, Some(&semester.choice), false, false));
            self.push_result(rng, &mut results, option, None);
        }
        out.extend(results);
    }

    fn enrolment(
        &self,
        node: &NodeSpec,
        via: Option<&NodeSpec>,
        carried: bool,
        exempted: bool,
    ) -> Record {
        Record::Enrolment(Enrolment {
            year: self.year,
            student: self.student.to_string(),
            step: self.step.node.id.clone(),
            node: node.id.clone(),
            via: via.map(|v| v.id.clone()),
            carried_over: carried,
            exempted,
        })
    }

    /// Session 1 of a unit, when results are generated for this year.
    fn push_result(
        &self,
        rng: &mut ChaCha8Rng,
        out: &mut Vec<Record>,
        unit: &NodeSpec,
        pass: Option<bool>,
    ) {
        if !self.results {
            return;
        }
        let pass = pass.unwrap_or_else(|| rng.gen_bool(rate::PASS));
        // Hundredths, so the grade has two decimals and a fail stays below 10.
        let hundredths: u32 = if pass {
            rng.gen_range(1000..=2000)
        } else {
            rng.gen_range(0..1000)
        };
        out.push(Record::Result(CourseResult {
            year: self.year,
            student: self.student.to_string(),
            node: unit.id.clone(),
            session: "1".to_string(),
            grade: Some(f64::from(hundredths) / 100.0),
            scale: Some(20.0),
            outcome: Some(if pass { "ADM" } else { "AJ" }.to_string()),
            ects_earned: Some(if pass { unit.ects.unwrap_or(0.0) } else { 0.0 }),
        }));
    }
}

/// The random stream `number` of a seed: 0 for the structure, 1 + index for each student,
/// so every student can be generated alone and in any order.
fn stream(seed: u64, number: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(number);
    rng
}

fn registration_key(r: &Registration) -> RecordKey {
    Record::Registration(r.clone()).key()
}

fn find_student(records: &[Record], pick: impl Fn(&Student) -> bool) -> Option<String> {
    records.iter().find_map(|r| match r {
        Record::Student(s) if pick(s) => Some(s.student.clone()),
        _ => None,
    })
}

fn find_double(registrations: &[&Registration]) -> Option<[RecordKey; 2]> {
    registrations.iter().filter(|r| r.main).find_map(|main| {
        let other = registrations
            .iter()
            .find(|r| !r.main && r.student == main.student && r.year == main.year)?;
        Some([registration_key(main), registration_key(other)])
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use conpere_model::KeyPart;
    use std::collections::{HashMap, HashSet};

    /// Three years with results: every feature on.
    fn university(seed: u64, students: usize) -> University {
        University::generate(SynthConfig {
            years: vec![2022, 2023, 2024],
            results: true,
            ..SynthConfig::new(seed, students)
        })
    }

    fn text(part: &KeyPart) -> &str {
        match part {
            KeyPart::Text(s) => s,
            KeyPart::Year(_) => panic!("not a text key part"),
        }
    }

    #[test]
    fn synth_is_deterministic_and_seeded() {
        let a: Vec<Record> = university(7, 60).records().collect();
        let b: Vec<Record> = university(7, 60).records().collect();
        let c: Vec<Record> = university(8, 60).records().collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn synth_students_do_not_depend_on_order() {
        let u = university(3, 50);
        let id = u.numbering.student_id(17);
        let from_stream: Vec<Record> = u
            .people()
            .filter(|r| match r {
                Record::Student(s) => s.student == id,
                _ => r.key().parts.get(1).is_some_and(|p| text(p) == id),
            })
            .collect();
        assert_eq!(from_stream, u.student_records(17));
    }

    #[test]
    fn synth_records_validate_are_normalized_and_unique() {
        let mut keys = HashSet::new();
        for record in university(11, 500).records() {
            record
                .validate()
                .unwrap_or_else(|e| panic!("{e}: {record:?}"));
            let mut normalized = record.clone();
            normalized.normalize();
            assert_eq!(normalized, record);
            assert!(keys.insert(record.key()), "duplicate key {}", record.key());
        }
    }

    #[test]
    fn synth_references_resolve() {
        let records: Vec<Record> = university(5, 500).records().collect();
        let nodes: HashSet<(i32, &str)> = records
            .iter()
            .filter_map(|r| match r {
                Record::Node(n) => Some((n.year, n.node.as_str())),
                _ => None,
            })
            .collect();
        let students: HashSet<&str> = records
            .iter()
            .filter_map(|r| match r {
                Record::Student(s) => Some(s.student.as_str()),
                _ => None,
            })
            .collect();
        let registrations: HashSet<(i32, &str, &str)> = records
            .iter()
            .filter_map(|r| match r {
                Record::Registration(r) => Some((r.year, r.student.as_str(), r.step.as_str())),
                _ => None,
            })
            .collect();
        let enrolled: HashSet<(i32, &str, &str)> = records
            .iter()
            .filter_map(|r| match r {
                Record::Enrolment(e) => Some((e.year, e.student.as_str(), e.node.as_str())),
                _ => None,
            })
            .collect();
        let node =
            |year, id: &str| assert!(nodes.contains(&(year, id)), "missing node {year} {id}");
        for record in &records {
            match record {
                Record::Student(_) | Record::Node(_) => {}
                Record::Edge(e) => {
                    node(e.year, &e.parent);
                    node(e.year, &e.child);
                }
                Record::Registration(r) => {
                    assert!(students.contains(r.student.as_str()));
                    node(r.year, &r.step);
                    node(r.year, r.diploma.as_deref().expect("diploma set"));
                }
                Record::Enrolment(e) => {
                    assert!(registrations.contains(&(e.year, e.student.as_str(), e.step.as_str())));
                    node(e.year, &e.node);
                    if let Some(via) = &e.via {
                        node(e.year, via);
                    }
                }
                Record::Result(r) => {
                    assert!(enrolled.contains(&(r.year, r.student.as_str(), r.node.as_str())));
                }
            }
        }
    }

    #[test]
    fn synth_hard_cases_exist_at_ten_students() {
        let u = University::generate(SynthConfig::new(1, 10));
        let hard = u.hard_cases().expect("hard cases");
        let records: HashMap<RecordKey, Record> = u.records().map(|r| (r.key(), r)).collect();
        let get = |key: &RecordKey| records.get(key).unwrap_or_else(|| panic!("{key} missing"));
        let student = |id: &str| match get(&RecordKey {
            kind: conpere_model::Kind::Student,
            parts: vec![KeyPart::Text(id.into())],
        }) {
            Record::Student(s) => s.clone(),
            other => panic!("{other:?}"),
        };
        let accented = student(&hard.accented_student);
        assert!(!accented.family_name.is_ascii() || !accented.given_name.is_ascii());
        assert!(student(&hard.leading_zero_student).student.starts_with('0'));
        let registration = |key: &RecordKey| match get(key) {
            Record::Registration(r) => r.clone(),
            other => panic!("{other:?}"),
        };
        let [main, second] = hard.double_registration.each_ref().map(registration);
        assert!(main.main && !second.main);
        assert_eq!((main.year, &main.student), (second.year, &second.student));
        assert!(!main.special_statuses.contains(&"multi_degree".to_string()));
        assert_eq!(
            registration(&hard.cancelled_registration).status,
            RegistrationStatus::Cancelled
        );
        let [before, after] = hard.repeater.each_ref().map(registration);
        assert_eq!(
            (&before.student, &before.step, before.year + 1),
            (&after.student, &after.step, after.year)
        );
        assert!(
            matches!(get(&hard.carried_over_enrolment), Record::Enrolment(e) if e.carried_over)
        );
        assert!(matches!(get(&hard.choice_enrolment), Record::Enrolment(e) if e.via.is_some()));
        let parents = records
            .values()
            .filter(|r| matches!(r, Record::Edge(e) if e.year == 2023 && Some(e.child.as_str()) == hard.shared_node.parts.get(1).map(text)))
            .count();
        assert!(parents >= 2, "{parents}");
    }

    #[test]
    fn synth_hard_cases_need_two_years() {
        let u = University::generate(SynthConfig {
            years: vec![2024],
            ..SynthConfig::new(1, 10)
        });
        assert_eq!(u.hard_cases(), None);
    }

    #[test]
    fn synth_enrolment_count_matches_students_for_enrolments() {
        let u = University::generate(SynthConfig::new(99, 2_000));
        let mut per_registration: HashMap<(i32, String, String), usize> = HashMap::new();
        for record in u.people() {
            if let Record::Enrolment(e) = record {
                *per_registration
                    .entry((e.year, e.student, e.step))
                    .or_default() += 1;
            }
        }
        assert!(per_registration
            .values()
            .all(|&n| n == ENROLMENTS_PER_REGISTRATION));
        let enrolments: usize = per_registration.values().sum();
        let predicted = students_for_enrolments(enrolments, 2);
        assert!(
            (1_600..=2_400).contains(&predicted),
            "{enrolments} enrolments → {predicted}"
        );
    }

    #[test]
    fn synth_people_is_lazy() {
        // Generating every one of these students would take minutes and gigabytes.
        let u = University::generate(SynthConfig::new(1, MAX_STUDENTS));
        assert_eq!(u.people().take(10).count(), 10);
    }

    #[test]
    fn synth_codes_fit_apogee_columns() {
        for record in university(2, 8_000).structure() {
            let Record::Node(n) = record else { continue };
            let prefix = n.node.split(':').next().unwrap_or_default();
            let limit = match prefix {
                "VDI" => 7,
                "VET" => 6,
                "LSE" | "ELP" => 8,
                other => panic!("unexpected prefix {other}"),
            };
            assert!(
                n.code.len() <= limit
                    && n.code
                        .bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-'),
                "{n:?}"
            );
            let expected = match &n.version {
                Some(v) => format!("{prefix}:{}/{v}", n.code),
                None => format!("{prefix}:{}", n.code),
            };
            assert_eq!(n.node, expected);
            assert!(n
                .version
                .as_ref()
                .is_none_or(|v| v.len() <= 3 && v.bytes().all(|b| b.is_ascii_digit())));
        }
    }

    #[test]
    fn synth_semesters_add_up_to_30_ects() {
        let u = university(4, 10);
        for diploma in &u.diplomas {
            for semester in diploma.steps.iter().flat_map(|s| &s.semesters) {
                let units: f64 = semester.units.iter().filter_map(|u| u.node.ects).sum();
                // The chosen option brings the rest (every option is worth OPTION_ECTS).
                assert!(semester.options.iter().all(|o| o.ects == Some(OPTION_ECTS)));
                assert_eq!(units + OPTION_ECTS, 30.0);
                assert!((3..=4).contains(&semester.units.len()));
                assert_eq!(semester.options.len(), 3);
            }
        }
    }

    #[test]
    fn synth_student_identities_are_unique_and_plausible() {
        let u = university(6, 5_000);
        let (mut ids, mut emails, mut logins) = (HashSet::new(), HashSet::new(), HashSet::new());
        let mut leading_zero = 0;
        for record in u.people() {
            let Record::Student(s) = record else { continue };
            assert!(s.student.len() == 8 && s.student.bytes().all(|b| b.is_ascii_digit()));
            leading_zero += usize::from(s.student.starts_with('0'));
            assert!(ids.insert(s.student.clone()));
            if let Some(ine) = &s.ine {
                assert!(ine.len() == 11 && ine[..10].bytes().all(|b| b.is_ascii_digit()));
                assert!(ine.as_bytes()[10].is_ascii_uppercase());
            }
            if let Some(email) = s.email {
                assert!(email.is_ascii() && !email.contains([' ', '\'']), "{email}");
                assert!(emails.insert(email.clone()), "duplicate {email}");
            }
            if let Some(login) = s.login {
                assert!(
                    login
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
                    "{login}"
                );
                assert!(logins.insert(login.clone()), "duplicate {login}");
            }
        }
        assert!((100..=150).contains(&leading_zero), "{leading_zero}");
    }

    #[test]
    fn synth_shares_are_plausible() {
        let u = University::generate(SynthConfig::new(12, 4_000));
        let (mut registrations, mut cancelled, mut pending, mut secondary) = (0, 0, 0, 0);
        let (mut continuing, mut employed, mut other, mut carried) = (0, 0, 0, 0);
        let mut years_of: HashMap<String, HashSet<i32>> = HashMap::new();
        for record in u.people() {
            match record {
                Record::Registration(r) => {
                    registrations += 1;
                    cancelled += usize::from(r.status == RegistrationStatus::Cancelled);
                    pending += usize::from(r.status == RegistrationStatus::Pending);
                    secondary += usize::from(!r.main);
                    continuing += usize::from(r.regime == Regime::Continuing);
                    employed += usize::from(r.special_statuses.contains(&"employed".to_string()));
                    other +=
                        usize::from(r.special_statuses.iter().any(|s| s.starts_with("other:")));
                    years_of.entry(r.student).or_default().insert(r.year);
                }
                Record::Enrolment(e) => carried += usize::from(e.carried_over),
                _ => {}
            }
        }
        let share = |n: usize| n as f64 / registrations as f64;
        assert!(
            (0.01..0.03).contains(&share(cancelled)),
            "cancelled {cancelled}"
        );
        assert!((0.003..0.02).contains(&share(pending)), "pending {pending}");
        assert!(
            (0.015..0.05).contains(&share(secondary)),
            "secondary {secondary}"
        );
        assert!(
            (0.04..0.08).contains(&share(continuing)),
            "continuing {continuing}"
        );
        assert!(
            (0.04..0.08).contains(&share(employed)),
            "employed {employed}"
        );
        assert!(other > 0 && carried > 0);
        let only_first = years_of.values().filter(|y| !y.contains(&2024)).count();
        let only_second = years_of.values().filter(|y| !y.contains(&2023)).count();
        assert!(
            only_first > 0 && only_second > 0,
            "{only_first} {only_second}"
        );
    }

    #[test]
    fn synth_results_follow_grades_and_repeats() {
        let u = university(21, 1_000);
        let records: Vec<Record> = u.people().collect();
        let mut outcome = HashMap::new();
        for record in &records {
            let Record::Result(r) = record else { continue };
            assert_ne!(r.year, 2024, "the last year has no results yet");
            let grade = r.grade.expect("graded");
            assert_eq!((grade * 100.0).round() / 100.0, grade);
            let admitted = grade >= 10.0;
            assert_eq!(
                r.outcome.as_deref(),
                Some(if admitted { "ADM" } else { "AJ" })
            );
            assert_eq!(r.ects_earned.is_some_and(|e| e > 0.0), admitted);
            outcome.insert((r.year, r.student.as_str(), r.node.as_str()), admitted);
        }
        let units: HashSet<&str> = u
            .diplomas
            .iter()
            .flat_map(|d| &d.steps)
            .flat_map(|s| &s.semesters)
            .flat_map(|s| &s.units)
            .map(|unit| unit.node.id.as_str())
            .collect();
        let mut checked = 0;
        for record in &records {
            let Record::Enrolment(e) = record else {
                continue;
            };
            if e.carried_over && units.contains(e.node.as_str()) {
                assert_eq!(
                    outcome.get(&(e.year - 1, e.student.as_str(), e.node.as_str())),
                    Some(&true)
                );
                checked += 1;
            }
        }
        assert!(checked > 0);
    }

    #[test]
    fn synth_names_fold_and_stay_distinct() {
        assert_eq!(fold("Œuvrard"), "oeuvrard");
        assert_eq!(fold("de La Fontaine"), "delafontaine");
        assert_eq!(fold("N'Diaye"), "ndiaye");
        assert_eq!(fold("Jean-François"), "jean-francois");
        assert_eq!(Name::accented().login(), "coeurdem");
        // Three rounds of every pair of names, and student 3's: no e-mail or login twice.
        let numbering = University::generate(SynthConfig::new(5, 10)).numbering;
        let names = (0..3 * NAME_COMBINATIONS)
            .map(|index| numbering.name(index))
            .chain([Name::accented()]);
        let (mut emails, mut logins) = (HashSet::new(), HashSet::new());
        for name in names {
            assert!(emails.insert(name.email()), "{}", name.email());
            assert!(logins.insert(name.login()), "{}", name.login());
        }
    }
}
