/** The pillar module's errors: a named class per failure, each with a stable code from the registry. */
import { WeftError } from '../errors/index.js';

/** No pillar of that name: the message lists the pillars there are. */
export class UnknownPillarError extends WeftError {
  constructor(name: string, known: readonly string[]) {
    super('WEFT_NOT_FOUND', `there is no pillar '${name}': the pillars are ${known.join(', ')}`, { details: { what: 'pillar', id: name, known: [...known] } });
  }
}

/** The pillar's domain folder is there already: installing would overwrite someone's domain. */
export class PillarExistsError extends WeftError {
  constructor(name: string, dir: string) {
    super(
      'WEFT_CONFLICT',
      `domain '${name}' exists already (${dir}): installing the pillar would overwrite it. Force it (weft init --pillar ${name} --force) to rewrite the pack's domain.toml, README.md and cartridges; other cartridges there stay`,
      { details: { pillar: name, domainDir: dir } },
    );
  }
}
