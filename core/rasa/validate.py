"""Cross-file checks of a Rasa project, each message ``file:line: what is wrong``.

Used by ``switchboard check`` and before training. What Rasa 3.6 refuses is an error
(a story slot or action the domain lacks, a form requiring an unknown slot); what Rasa
trains with a warning is a warning here too (an intent or entity the domain does not
list, a slot mapping naming an unknown intent, components Switchboard does not run).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from core.rasa.components import component_notes
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


@dataclass(slots=True)
class Review:
    """What ``check`` reports: errors stop training and ``run``; warnings do not."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # how supported components behave (Duckling)


def _check_blocks(blocks: Iterable[Block], domain: Domain, domain_file: str, warnings: list[str]) -> list[str]:
    errors: list[str] = []
    intents, actions = domain.all_intents, domain.all_actions
    loops = set(domain.forms) | set(domain.actions) | {"action_two_stage_fallback"}
    for block in blocks:
        for step in _flat((*block.condition, *block.steps)):
            where = f"{block.file}:{step.line}"
            if step.kind == "intent" and step.name and step.name not in intents:
                warnings.append(f"{where}: intent '{step.name}' is not in {domain_file} intents")
            elif step.kind == "action" and step.name not in actions:
                errors.append(f"{where}: action '{step.name}' is not in {domain_file} (actions, responses or forms)")
            elif step.kind == "slot" and step.name not in domain.slots:
                errors.append(f"{where}: slot '{step.name}' is not in {domain_file} slots")
            elif step.kind == "active_loop" and step.name is not None and step.name not in loops:
                errors.append(f"{where}: active_loop '{step.name}' is not a form in {domain_file}")
            if step.kind == "intent":
                for entity, _ in step.entities:
                    if entity not in domain.entities:
                        warnings.append(f"{where}: entity '{entity}' is not in {domain_file} entities")
    return errors


def _check_domain(domain: Domain, domain_file: str, warnings: list[str]) -> list[str]:
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
                warnings.append(f"{where}: slot '{slot.name}' maps from entity '{mapping.entity}', which is not in entities (it never fills)")
            for intent in (*mapping.intent, *mapping.not_intent):
                if intent not in domain.all_intents:
                    kind = "a form, not an intent" if intent in domain.forms else "not in intents"
                    warnings.append(f"{where}: slot '{slot.name}' mapping names intent '{intent}', which is {kind}")
            for loop, requested in mapping.conditions:
                if loop is not None and loop not in domain.forms:
                    warnings.append(f"{where}: slot '{slot.name}' mapping condition names form '{loop}', which is not in forms")
                if requested is not None and requested not in domain.slots:
                    warnings.append(f"{where}: slot '{slot.name}' mapping condition names slot '{requested}', which is not in slots")
    for name in domain.actions:
        if name.startswith("utter_") and name not in domain.responses:
            warnings.append(f"{at('action:' + name)}: action '{name}' looks like a response but has none in responses")
    for name, variations in domain.responses.items():
        for variation in variations:
            for cond in variation.get("condition") or []:
                if cond.get("name") not in domain.slots:
                    warnings.append(f"{at('response:' + name).split(':')[0]}:{variation.get('_line', 0)}: response '{name}' has a condition on slot '{cond.get('name')}', which is not in slots")
    return errors


def review(project: RasaProject) -> Review:
    """Errors and warnings of a loaded project."""
    domain = project.domain
    domain_file = domain.files[0] if domain.files else "domain.yml"
    result = Review()
    warnings = result.warnings
    warnings += domain.warnings
    errors = _check_domain(domain, domain_file, warnings)
    for name, (file, line) in sorted(project.nlu.intent_lines.items()):
        if name not in domain.all_intents:
            warnings.append(f"{file}:{line}: intent '{name}' is not in {domain_file} intents")
    for name, (file, line) in sorted(project.nlu.entity_lines.items()):
        if name not in domain.entities:
            warnings.append(f"{file}:{line}: entity '{name}' is not in {domain_file} entities")
    errors += _check_blocks(project.stories.rules, domain, domain_file, warnings)
    errors += _check_blocks(project.stories.stories, domain, domain_file, warnings)
    for path in project.test_files:
        try:
            tests = load_story_file(path, display=project.display(path))
        except RasaFileError as exc:
            errors.append(str(exc))
            continue
        errors += _check_blocks(tests.stories, domain, domain_file, warnings)
    for intent in project.config.handoff_intents:
        if intent not in domain.all_intents and project.nlu.examples and intent in project.nlu.intents:
            warnings.append(f"config.yml: handoff intent '{intent}' is not in {domain_file} intents")
    config = project.config
    warnings += component_notes(config.pipeline, config.pipeline_lines, file="config.yml")
    warnings += component_notes(config.policies, config.policy_lines, file="config.yml")
    result.notes += component_notes(config.pipeline, config.pipeline_lines, file="config.yml", supported=True)
    result.errors = errors
    return result


def check_project(project: RasaProject) -> list[str]:
    """All errors of a loaded project (empty when it can train and run)."""
    return review(project).errors


def review_project(project_dir: Path) -> Review:
    """Load and check a project; a malformed file is one error."""
    try:
        project = load_project(Path(project_dir))
    except RasaFileError as exc:
        return Review(errors=[str(exc)])
    return review(project)


def validate_project(project_dir: Path) -> list[str]:
    """Load and check a project; malformed files and broken references, as messages."""
    return review_project(project_dir).errors
