# conpere's pages, in English.
app-name = Learning contracts
skip-to-content = Skip to content
nav-home = My contracts
nav-logout = Log out
lang-switch = Français
footer-text = conpere — licence learning contracts (arrêté of 30 July 2018)

home-title = My learning contracts
home-empty = No contract to show.
home-year = Year
home-student = Student
home-state = State
home-kind = Kind
home-open = Open contract { $id }
kind-standard = standard
kind-specific = specific

state-draft = draft
state-proposed = proposed
state-signed = signed
state-validated = validated
state-refused = refused
state-closed = closed

next-draft = The directeur d'études completes and proposes it.
next-refused = The directeur d'études reworks and proposes it again.
next-proposed = The student signs or refuses it.
next-signed = The directeur d'études validates or refuses it.
next-validated = It is in force; an amendment may be opened.
next-closed = The year is over.

contract-title = Contract { $year }–{ $next }
contract-state = State: { $state }
contract-next = Next: { $next }
contract-version = Version { $version }
contract-hash = Fingerprint
contract-sections = Path
contract-section = { $step } ({ $regime })
contract-ects = { $ects } ECTS
contract-period = ECTS per period
contract-statuses = Special statuses
contract-no-status = None
contract-measures = Support measures
contract-no-measure = None
contract-objectives = Objectives
contract-no-objective = None

sign-title = Sign the contract
sign-consent = I have read this learning contract and commit to it.
sign-confirm = I have read the contract and agree to sign it
sign-submit = Sign
refuse-title = Refuse the contract
refuse-reason = Reason for refusing
refuse-submit = Refuse
done-sign = The contract is signed.
done-refuse = The contract is refused.

error-title = Something went wrong
error-401 = You are not logged in.
error-401-do = Log in, then try again.
error-login = Log in
error-403 = You may not see this page.
error-403-do = If you should, ask your scolarité.
error-404 = This page does not exist, or you may not see it.
error-404-do = Go back to your contracts.
error-409 = Someone changed this contract since you opened it.
error-409-do = Here is its new version: read it again before acting.
error-422 = The form is incomplete.
error-422-do = Go back and complete it.
error-other = The service does not answer right now.
error-other-do = Try again in a few minutes.
error-back = Back to my contracts
