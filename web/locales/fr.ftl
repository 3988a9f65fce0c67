# Les pages de conpere, en français (langue par défaut).
app-name = Contrats pédagogiques
skip-to-content = Aller au contenu
nav-home = Mes contrats
nav-logout = Se déconnecter
lang-switch = English
footer-text = conpere — contrats pédagogiques de licence (arrêté du 30 juillet 2018)

home-title = Mes contrats pédagogiques
home-empty = Aucun contrat à afficher.
home-year = Année
home-student = Étudiant
home-state = État
home-kind = Nature
home-open = Ouvrir le contrat { $id }
kind-standard = standard
kind-specific = spécifique

state-draft = brouillon
state-proposed = proposé
state-signed = signé
state-validated = validé
state-refused = refusé
state-closed = clos

next-draft = Le directeur d'études le complète et le propose.
next-refused = Le directeur d'études le reprend et le propose à nouveau.
next-proposed = L'étudiant le signe ou le refuse.
next-signed = Le directeur d'études le valide ou le refuse.
next-validated = Il est en vigueur ; un avenant peut être ouvert.
next-closed = L'année est terminée.

contract-title = Contrat { $year }–{ $next }
contract-state = État : { $state }
contract-next = Prochaine étape : { $next }
contract-version = Version { $version }
contract-hash = Empreinte
contract-sections = Parcours
contract-section = { $step } ({ $regime })
contract-ects = { $ects } ECTS
contract-period = ECTS par période
contract-statuses = Statuts particuliers
contract-no-status = Aucun
contract-measures = Mesures d'accompagnement
contract-no-measure = Aucune
contract-objectives = Objectifs
contract-no-objective = Aucun

sign-title = Signer le contrat
sign-consent = J'ai lu ce contrat pédagogique et je m'engage à le respecter.
sign-confirm = J'ai lu le contrat et j'accepte de le signer
sign-submit = Signer
refuse-title = Refuser le contrat
refuse-reason = Motif du refus
refuse-submit = Refuser
done-sign = Le contrat est signé.
done-refuse = Le contrat est refusé.

error-title = Une erreur est survenue
error-401 = Vous n'êtes pas connecté.
error-401-do = Connectez-vous puis recommencez.
error-login = Se connecter
error-403 = Vous n'avez pas accès à cette page.
error-403-do = Si vous devriez y avoir accès, adressez-vous à votre scolarité.
error-404 = Cette page n'existe pas, ou vous n'y avez pas accès.
error-404-do = Revenez à vos contrats.
error-409 = Quelqu'un a modifié ce contrat depuis que vous l'avez ouvert.
error-409-do = Voici sa nouvelle version : relisez-la avant d'agir.
error-422 = Le formulaire est incomplet.
error-422-do = Revenez en arrière et complétez-le.
error-other = Le service ne répond pas pour le moment.
error-other-do = Réessayez dans quelques minutes.
error-back = Revenir à mes contrats
