"""Cross-file checks of a Rasa project, each message ``file:line: what is wrong``.

Used by ``switchboard check`` and before training: a rule naming an intent the domain
does not list fails here, not in the middle of a conversation.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from core.rasa.domain import Domain
from core.rasa.project import RasaProject, load_project
from core.rasa.stories import Block, Step, load_story_file
from core.rasa.yamlio import RasaFileError


def _flat(steps: Iterable[Step]) -> Iterable[Step]:
    for step in steps:
        if step.kind == "or":
            yield from _flat(step.alternatives)
        else:
            yield step


def _check_blocks(blocks: Iterable[Block], domain: Domain, domain_file: str) -> list[str]:
    errors: list[str] = []
    intents, actions = domain.all_intents, domain.all_actions
    loops = set(domain.forms) | set(domain.actions) | {"action_two_stage_fallback"}
    for block in blocks:
        for step in _flat((*block.condition, *block.steps)):
            where = f"{block.file}:{step.line}"
            if step.kind == "intent" and step.name and step.name not in intents:
                errors.append(f"{where}: intent '{step.name}' is not in {domain_file} intents")
            elif step.kind == "action" and step.name not in actions:
                errors.append(f"{where}: action '{step.name}' is not in {domain_file} (actions, responses or forms)")
            elif step.kind == "slot" and step.name not in domain.slots:
                errors.append(f"{where}: slot '{step.name}' is not in {domain_file} slots")
            elif step.kind == "active_loop" and step.name is not None and step.name not in loops:
                errors.append(f"{where}: active_loop '{step.name}' is not a form in {domain_file}")
            if step.kind == "intent":
                for entity, _ in step.entities:
                    if entity not in domain.entities:
                        errors.append(f"{where}: entity '{entity}' is not in {domain_file} entities")
    return errors


def _check_domain(domain: Domain, domain_file: str) -> list[str]:
    errors: list[str] = []

    def at(key: str) -> str:
        file, line = domain.where.get(key, (domain_file, 0))
        return f"{file}:{line}" if line else file

    for form in domain.forms.values():
        for required in form.required_slots:
            if required not in domain.slots:
                errors.append(f"{at('form:' + form.name)}: form '{form.name}' requires slot '{required}', which is not in slots")
    for slot in domain.slots.values():
        for mapping in slot.mappings:
            where = f"{at('slot:' + slot.name).split(':')[0]}:{mapping.line}" if mapping.line else at("slot:" + slot.name)
            if mapping.type == "from_entity" and mapping.entity not in domain.entities:
                errors.append(f"{where}: slot '{slot.name}' maps from entity '{mapping.entity}', which is not in entities")
            for intent in (*mapping.intent, *mapping.not_intent):
                if intent not in domain.all_intents:
                    errors.append(f"{where}: slot '{slot.name}' mapping names intent '{intent}', which is not in intents")
            for loop, requested in mapping.conditions:
                if loop is not None and loop not in domain.forms:
                    errors.append(f"{where}: slot '{slot.name}' mapping condition names form '{loop}', which is not in forms")
                if requested is not None and requested not in domain.slots:
                    errors.append(f"{where}: slot '{slot.name}' mapping condition names slot '{requested}', which is not in slots")
    for name in domain.actions:
        if name.startswith("utter_") and name not in domain.responses:
            errors.append(f"{at('action:' + name)}: action '{name}' looks like a response but has none in responses")
    for name, variations in domain.responses.items():
        for variation in variations:
            for cond in variation.get("condition") or []:
                if cond.get("name") not in domain.slots:
                    errors.append(f"{at('response:' + name).split(':')[0]}:{variation.get('_line', 0)}: response '{name}' has a condition on slot '{cond.get('name')}', which is not in slots")
    return errors


def check_project(project: RasaProject) -> list[str]:
    """All reference errors of a loaded project (empty when consistent)."""
    domain = project.domain
    domain_file = domain.files[0] if domain.files else "domain.yml"
    errors = _check_domain(domain, domain_file)
    for name, (file, line) in sorted(project.nlu.intent_lines.items()):
        if name not in domain.all_intents:
            errors.append(f"{file}:{line}: intent '{name}' is not in {domain_file} intents")
    for name, (file, line) in sorted(project.nlu.entity_lines.items()):
        if name not in domain.entities:
            errors.append(f"{file}:{line}: entity '{name}' is not in {domain_file} entities")
    errors += _check_blocks(project.stories.rules, domain, domain_file)
    errors += _check_blocks(project.stories.stories, domain, domain_file)
    for path in project.test_files:
        try:
            tests = load_story_file(path, display=project.display(path))
        except RasaFileError as exc:
            errors.append(str(exc))
            continue
        errors += _check_blocks(tests.stories, domain, domain_file)
    for intent in project.config.handoff_intents:
        if intent not in domain.all_intents and project.nlu.examples and intent in project.nlu.intents:
            errors.append(f"config.yml: handoff intent '{intent}' is not in {domain_file} intents")
    return errors


def validate_project(project_dir: Path) -> list[str]:
    """Load and check a project; malformed files and broken references, as messages."""
    try:
        project = load_project(Path(project_dir))
    except RasaFileError as exc:
        return [str(exc)]
    return check_project(project)
