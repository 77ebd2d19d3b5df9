/**
 * A corpus of signal items with known groups, generated deterministically from a seed: 25
 * stories each told by several of 12 sources in paraphrase (different facts, wordings, frames,
 * entity names), near-duplicate copies of some items with small edits (a word, the case, a
 * prefix, a dropped sentence), and unrelated singletons. Several stories share their main
 * entity with another (two about the Kestrel database, two about Nimbus Cloud, Orion Motors,
 * Veltra; a cup final and a tennis final), so precision is earned. `syntheticCorpus` scales the
 * same shapes to any size with generated names, for the 10,000-item runs.
 */
import { keywords, oneLineSummary, simhash64 } from '../../src/signals/text.js';
import type { SignalItem } from '../../src/signals/types.js';
import { Prng } from '../chaos/prng.js';

export interface Topic {
  key: string;
  /** Ways the story's subject is named. */
  entities: string[];
  /** Feed categories its items may carry. */
  cats: string[];
  /** Facts as predicates of the subject, each in two wordings. */
  facts: Array<[string, string]>;
}

export const TOPICS: Topic[] = [
  {
    key: 'kestrel-release',
    entities: ['Kestrel 4.0', 'the Kestrel database 4.0 release', 'version 4.0 of the Kestrel database'],
    cats: ['databases', 'open-source', 'kestrel'],
    facts: [
      ['ships a rewritten query planner', 'arrives with a completely new query planner'],
      ['doubles write throughput on benchmark workloads', 'delivers twice the write throughput in benchmarks'],
      ['adds built-in logical replication', 'introduces native logical replication'],
      ['drops the legacy v1 wire protocol', 'removes support for the old v1 protocol'],
      ['is available for download now', 'can be downloaded today from the project site'],
      ['was two years in the making, maintainers say', 'took its maintainers two years to build'],
    ],
  },
  {
    key: 'kestrel-cve',
    entities: ['the Kestrel database project', 'Kestrel maintainers', 'the team behind the Kestrel database'],
    cats: ['security', 'databases', 'kestrel'],
    facts: [
      ['patched a critical remote code execution flaw', 'fixed a critical remote code execution vulnerability'],
      ['urged administrators to upgrade immediately', 'told admins to apply the security update right away'],
      ['confirmed the bug, tracked as CVE-2031-4411, affects all 3.x versions', 'said CVE-2031-4411 affects every 3.x installation'],
      ['credited an independent security researcher with the discovery', 'thanked the researcher who reported the vulnerability'],
      ['saw no evidence of exploitation in the wild', 'found no sign the flaw was exploited by attackers'],
      ['published mitigation steps for unpatched servers', 'offered a workaround for servers that cannot be patched'],
    ],
  },
  {
    key: 'nimbus-outage',
    entities: ['Nimbus Cloud', 'cloud provider Nimbus', 'Nimbus Cloud Services'],
    cats: ['cloud', 'outage', 'infrastructure'],
    facts: [
      ['suffered a major outage in its eu-west region', 'went down across its eu-west data centers'],
      ['restored service after nearly six hours', 'brought systems back online after about six hours'],
      ['blamed a faulty network configuration change', 'said a bad network config push caused the failure'],
      ['left thousands of websites and apps offline', 'knocked thousands of sites and apps offline'],
      ['promised affected customers service credits', 'will compensate affected customers with credits'],
      ['will publish a full incident postmortem', 'plans a detailed postmortem of the incident'],
    ],
  },
  {
    key: 'nimbus-pricing',
    entities: ['Nimbus Cloud', 'Nimbus', 'cloud giant Nimbus'],
    cats: ['cloud', 'pricing', 'business'],
    facts: [
      ['raises object storage prices by 20 percent', 'is increasing storage prices by a fifth'],
      ['will apply the new pricing from March', 'says the new rates take effect in March'],
      ['cites rising energy and hardware costs', 'pointed to higher electricity and hardware costs'],
      ['angered startups that rely on cheap storage', 'faces backlash from startups built on its storage'],
      ['keeps compute prices unchanged', 'leaves virtual machine pricing untouched'],
      ['offers discounts for three-year commitments', 'will discount long-term reserved contracts'],
    ],
  },
  {
    key: 'orion-recall',
    entities: ['Orion Motors', 'electric carmaker Orion Motors', 'Orion'],
    cats: ['automotive', 'recall', 'ev'],
    facts: [
      ['recalls 80,000 electric SUVs over battery fire risk', 'is recalling about 80,000 EV SUVs because of a battery fire hazard'],
      ['found a defect in battery cooling modules', 'traced the problem to faulty battery coolant modules'],
      ['told owners to park outdoors until repairs are done', 'advised owners to park their cars outside until fixed'],
      ['will replace the modules free of charge', 'says dealers will swap the modules at no cost'],
      ['reported twelve fires linked to the fault', 'has linked a dozen vehicle fires to the defect'],
      ['saw its shares fall 6 percent', 'watched its stock slide 6 percent after the news'],
    ],
  },
  {
    key: 'orion-factory',
    entities: ['Orion Motors', 'Orion', 'the carmaker Orion Motors'],
    cats: ['automotive', 'manufacturing', 'ev'],
    facts: [
      ['will build a new battery factory in Texas', 'plans a battery gigafactory near Austin, Texas'],
      ['is investing 4 billion dollars in the plant', 'commits 4 billion dollars to the new site'],
      ['expects the factory to create 5,000 jobs', 'says the plant will employ about 5,000 workers'],
      ['aims to start production in 2028', 'targets first output from the factory in 2028'],
      ['received state tax incentives for the project', 'won tax breaks from Texas officials for the site'],
      ['wants to cut battery costs by a third', 'hopes the plant lowers battery costs by 30 percent'],
    ],
  },
  {
    key: 'heliox-rocket',
    entities: ['Heliox Aerospace', "Heliox's Vega heavy rocket", 'launch startup Heliox'],
    cats: ['space', 'rockets', 'launch'],
    facts: [
      ['lost its Vega rocket in an explosion minutes after liftoff', 'saw the Vega rocket explode shortly after launch'],
      ['was attempting the first orbital test flight', 'had planned a maiden orbital flight test'],
      ['says no one was injured', 'confirmed there were no injuries'],
      ['will investigate an engine anomaly', 'is looking into a suspected engine failure'],
      ['launched from the coastal spaceport in Kourou', 'lifted off from the Kourou spaceport'],
      ['still plans another attempt next year', 'intends to try again within a year'],
    ],
  },
  {
    key: 'lunar-gateway',
    entities: ['the Lunar Gateway station program', 'the international Lunar Gateway project', 'the Gateway lunar outpost'],
    cats: ['space', 'moon', 'policy'],
    facts: [
      ['faces a two-year delay', 'has slipped by two years'],
      ['is over budget by 3 billion dollars, auditors found', 'overran its budget by 3 billion dollars according to auditors'],
      ['will not host astronauts before 2032', 'now expects its first crew no earlier than 2032'],
      ['struggles with late deliveries of its power module', 'is held up by late power and propulsion module deliveries'],
      ['remains central to plans for lunar exploration', 'is still key to the moon exploration roadmap'],
      ['drew criticism from lawmakers on the science committee', 'was criticised by members of the science committee'],
    ],
  },
  {
    key: 'ecb-rates',
    entities: ['the European Central Bank', 'the ECB', 'eurozone central bankers'],
    cats: ['economy', 'finance', 'europe'],
    facts: [
      ['raised interest rates by a quarter point', 'lifted its key interest rate by 25 basis points'],
      ['cited stubborn core inflation', 'pointed to persistent core inflation'],
      ['signalled further hikes may follow', 'hinted that more rate increases are possible'],
      ['lowered its growth forecast for next year', 'cut its economic growth outlook for next year'],
      ['pushed the euro higher against the dollar', 'sent the euro up against the dollar'],
      ['faced calls from southern members to pause', 'resisted pressure from southern countries to hold rates'],
    ],
  },
  {
    key: 'marlow-drug',
    entities: ['Marlow Pharma', "Marlow Pharma's drug lemvarisin", 'drugmaker Marlow'],
    cats: ['health', 'pharma', 'alzheimers'],
    facts: [
      ['reported positive late-stage trial results for its Alzheimer drug', 'said its Alzheimer treatment succeeded in a phase 3 trial'],
      ['slowed cognitive decline by 27 percent', 'reduced the rate of memory decline by 27 percent'],
      ['saw brain swelling side effects in some patients', 'noted brain swelling as a side effect in a minority of patients'],
      ['will file for regulatory approval this year', 'plans to seek approval from regulators before year end'],
      ['enrolled 1,800 patients in the study', 'tested the lemvarisin drug on 1,800 patients'],
      ['watched its shares jump 40 percent', 'saw its stock surge 40 percent on the trial data'],
    ],
  },
  {
    key: 'storm-ingrid',
    entities: ['Storm Ingrid', 'the storm named Ingrid', 'Ingrid'],
    cats: ['weather', 'europe', 'floods'],
    facts: [
      ['caused severe flooding across northern Germany and Denmark', 'flooded towns in Denmark and northern Germany'],
      ['forced thousands of residents to evacuate', 'drove thousands of people from their homes'],
      ['brought wind gusts of up to 140 km/h', 'produced gusts reaching 140 kilometres per hour'],
      ['cut power to 200,000 households', 'left 200,000 homes without electricity'],
      ['halted rail traffic in the region', 'stopped trains across the flooded region'],
      ['is expected to weaken by Sunday, forecasters say', 'should lose strength by the weekend according to forecasters'],
    ],
  },
  {
    key: 'sierra-fire',
    entities: ['the Sierra Ridge wildfire', 'the Sierra Ridge fire', 'a wildfire near Sierra Ridge'],
    cats: ['wildfires', 'california', 'weather'],
    facts: [
      ['has burned more than 30,000 acres in California', 'scorched over 30,000 acres of California forest'],
      ['is only 15 percent contained', 'remains just 15 percent contained, firefighters say'],
      ['destroyed dozens of homes', 'has razed dozens of houses'],
      ['prompted evacuation orders for 12,000 people', 'led officials to order 12,000 residents to evacuate'],
      ['spread quickly because of dry winds', 'was driven by hot, dry winds'],
      ['sent smoke drifting over Sacramento', 'blanketed Sacramento in wildfire smoke'],
    ],
  },
  {
    key: 'veltra-phone',
    entities: ['Veltra', 'phone maker Veltra', "Veltra's X9 smartphone"],
    cats: ['smartphones', 'gadgets', 'veltra'],
    facts: [
      ['unveiled the X9 smartphone with a foldable screen', 'launched its foldable X9 phone'],
      ['priced the X9 at 1,299 dollars', 'set the price of the X9 phone at 1,299 dollars'],
      ['claims two-day battery life for the device', 'promises the phone battery lasts two days'],
      ['added a 200-megapixel camera', 'put a 200 megapixel main camera in the handset'],
      ['will ship the phone in October', 'starts shipping the handset in October'],
      ['hopes to win back smartphone market share from rivals', 'aims to regain smartphone share lost to competitors'],
    ],
  },
  {
    key: 'veltra-fine',
    entities: ['Veltra', 'smartphone giant Veltra', 'Veltra Electronics'],
    cats: ['regulation', 'antitrust', 'veltra'],
    facts: [
      ['was fined 1.8 billion euros by EU regulators', 'received a 1.8 billion euro penalty from the European Commission'],
      ['abused its dominance in the app store market, regulators said', 'illegally restricted rival app stores, according to the Commission'],
      ['plans to appeal the antitrust decision', 'said it will challenge the antitrust ruling in court'],
      ['must allow alternative payment systems', 'has to open its devices to other payment providers'],
      ['faces a similar antitrust investigation in the UK', 'is also under investigation by British competition regulators'],
      ['called the ruling unfair to consumers', 'argued the antitrust decision harms its customers'],
    ],
  },
  {
    key: 'quantix',
    entities: ['Quantix', 'quantum startup Quantix', "Quantix's new processor"],
    cats: ['quantum', 'computing', 'startups'],
    facts: [
      ['built a quantum processor with 1,000 qubits', 'unveiled a 1,000-qubit quantum chip'],
      ['achieved record low error rates', 'reported its lowest qubit error rates yet'],
      ['will offer access through its cloud platform', 'is opening the quantum machine to cloud customers'],
      ['says useful quantum advantage is five years away', 'expects practical quantum advantage within five years'],
      ['raised 300 million dollars in new funding', 'closed a 300 million dollar funding round'],
      ['uses superconducting circuits cooled near absolute zero', 'relies on superconducting qubits chilled close to absolute zero'],
    ],
  },
  {
    key: 'harbor-ransomware',
    entities: ['Harbor City Health', 'the Harbor City hospital network', 'hospitals in Harbor City'],
    cats: ['security', 'healthcare', 'ransomware'],
    facts: [
      ['was hit by a ransomware attack', 'suffered a crippling ransomware attack'],
      ['diverted ambulances to other hospitals', 'sent ambulances to neighbouring hospitals'],
      ['switched to paper records', 'went back to paper charts after the ransomware attack'],
      ['has not paid the ransom, officials said', 'refused to pay the attackers, officials say'],
      ['is working with the FBI on the investigation', 'called in federal investigators'],
      ['warned that patient data may have been stolen', 'said patient records may have been taken'],
    ],
  },
  {
    key: 'riverside-cup',
    entities: ['Riverside United', 'Riverside', 'the Riverside United squad'],
    cats: ['football', 'sports', 'cup'],
    facts: [
      ['won the national cup final 2-1', 'beat Northgate 2-1 to lift the cup'],
      ['came from behind against Northgate Rovers', 'rallied after conceding first to Northgate Rovers'],
      ['scored the winner through striker Tomas Varga in stoppage time', 'got a stoppage-time winner from Tomas Varga'],
      ['claimed its first trophy in 31 years', 'ended a 31-year wait for silverware'],
      ['celebrated with fans at a packed stadium', 'partied with supporters in a sold-out stadium'],
      ['will play in European competition next season', 'earned a place in Europe next season'],
    ],
  },
  {
    key: 'marsh-tennis',
    entities: ['Elena Marsh', 'world number three Elena Marsh', 'Marsh'],
    cats: ['tennis', 'sports'],
    facts: [
      ['won the Open final in straight sets', 'took the Open title without dropping a set'],
      ['beat the defending champion Ana Kovac', 'defeated holder Ana Kovac'],
      ['claimed her first grand slam title', 'captured a maiden major tennis title'],
      ['served 14 aces in the match', 'hit 14 aces over the final'],
      ['thanked her coach and family in the trophy ceremony', 'dedicated the win to her family and coach'],
      ['will rise to number two in the rankings', 'moves up to second in the world tennis rankings'],
    ],
  },
  {
    key: 'pinecrest-merger',
    entities: ['Pinecrest Bank', 'regional lender Pinecrest', 'Pinecrest Bank and Solano Financial'],
    cats: ['banking', 'mergers', 'finance'],
    facts: [
      ['agreed to merge with Solano Financial', 'will combine with rival Solano Financial'],
      ['valued the all-stock deal at 9 billion dollars', 'struck a merger worth about 9 billion dollars in stock'],
      ['will create the fifth-largest bank in the region', 'forms the fifth-biggest lender in the region'],
      ['expects regulatory approval of the merger by mid-year', 'hopes regulators sign off on the merger by the middle of the year'],
      ['plans to close 60 overlapping branches', 'will shut 60 bank branches that overlap'],
      ['named its chief executive to lead the combined bank', 'said its CEO will run the merged bank'],
    ],
  },
  {
    key: 'coral-bleaching',
    entities: ['marine scientists', 'researchers studying the reef', 'a team of ocean scientists'],
    cats: ['science', 'climate', 'oceans'],
    facts: [
      ['found that 60 percent of coral in the northern reef was bleached', 'reported bleaching in 60 percent of northern reef corals'],
      ['linked the coral bleaching to record ocean temperatures', 'blamed record sea surface temperatures for the coral bleaching'],
      ['surveyed more than 400 reefs by air and underwater', 'examined over 400 reefs in aerial and dive surveys'],
      ['warned some corals may not recover', 'said parts of the reef may never recover'],
      ['published the reef study in the journal Marine Ecology', 'released their coral findings in Marine Ecology'],
      ['called for faster cuts to emissions to save reefs', 'urged quicker reductions in greenhouse emissions to protect corals'],
    ],
  },
  {
    key: 'ferrolang',
    entities: ['Ferrolang 2.0', 'the Ferrolang programming language', 'the Ferrolang team'],
    cats: ['programming', 'open-source', 'languages'],
    facts: [
      ['introduces async generators', 'adds support for async generators'],
      ['cuts compile times by 40 percent', 'compiles code 40 percent faster'],
      ['stabilises the package manager', 'declares its package manager stable'],
      ['breaks compatibility with some 1.x macros', 'is not compatible with certain 1.x macros'],
      ['ships an official language server', 'includes a first-party language server'],
      ['was announced at FerroConf in Lisbon', 'debuted at the FerroConf conference in Lisbon'],
    ],
  },
  {
    key: 'port-strike',
    entities: ['dockworkers at Port Halden', 'Port Halden dock workers', 'the Halden port union'],
    cats: ['labor', 'shipping', 'strikes'],
    facts: [
      ['began a 72-hour strike over pay', 'walked out for 72 hours in a pay dispute'],
      ['left hundreds of containers stranded', 'stranded hundreds of shipping containers'],
      ['demand a 12 percent wage increase', 'are asking for a 12 percent pay raise'],
      ['rejected the latest offer from port operators', 'turned down the most recent offer of the port operators'],
      ['warned of longer strikes in the summer', 'threatened longer stoppages this summer'],
      ['disrupted supply chains for retailers', 'snarled port deliveries for retailers'],
    ],
  },
  {
    key: 'whitfield-election',
    entities: ['Mayor Dana Whitfield', 'incumbent mayor Dana Whitfield', 'Whitfield'],
    cats: ['politics', 'elections', 'local'],
    facts: [
      ['won re-election with 54 percent of the vote', 'secured a second term as mayor with 54 percent'],
      ['defeated challenger Marcus Bell', 'beat city councillor Marcus Bell'],
      ['promised to expand public transit', 'pledged more buses and tram lines'],
      ['saw turnout rise to 48 percent', 'benefited from election turnout that climbed to 48 percent'],
      ['thanked volunteers at her victory party', 'addressed supporters at a victory rally'],
      ['will be sworn in as mayor next month', 'takes the oath of office next month'],
    ],
  },
  {
    key: 'chip-exports',
    entities: ['the commerce department', 'US trade officials', 'Washington'],
    cats: ['semiconductors', 'trade', 'policy'],
    facts: [
      ['tightened export controls on advanced AI chips', 'imposed stricter export rules on high-end AI chips'],
      ['added 30 companies to the entity list', 'put 30 more chip firms on its trade blacklist'],
      ['restricted sales of chipmaking equipment', 'limited exports of semiconductor manufacturing tools'],
      ['gave chipmakers 90 days to comply', 'set a 90-day deadline for chip companies to comply'],
      ['cited national security concerns over the chips', 'said the export rules protect national security'],
      ['drew protests from semiconductor industry groups', 'was criticised by semiconductor trade associations'],
    ],
  },
  {
    key: 'roman-villa',
    entities: ['archaeologists in Somerset', 'a team of archaeologists', 'excavators in Somerset'],
    cats: ['archaeology', 'history', 'science'],
    facts: [
      ['uncovered a Roman villa with intact mosaics', 'discovered a Roman villa with well-preserved mosaic floors'],
      ['dated the villa to the 4th century', 'believe the Roman villa was built in the fourth century'],
      ['found the site under a farmer’s field', 'located the villa remains beneath farmland'],
      ['recovered coins, pottery and a bronze statue', 'unearthed pottery, coins and a small bronze figure'],
      ['called it the find of a generation', 'described the villa discovery as once in a generation'],
      ['will open the site to visitors next summer', 'plan public tours of the excavation next summer'],
    ],
  },
];

export const SOURCES: ReadonlyArray<{ id: string; tags: string[] }> = [
  { id: 'techwire', tags: ['tech', 'news'] },
  { id: 'globe-daily', tags: ['news', 'world'] },
  { id: 'bizjournal', tags: ['business', 'news'] },
  { id: 'sciencenow', tags: ['science'] },
  { id: 'devfeed', tags: ['tech', 'dev'] },
  { id: 'metro-times', tags: ['news', 'local'] },
  { id: 'sports-desk', tags: ['sports'] },
  { id: 'euro-wire', tags: ['news', 'europe'] },
  { id: 'health-today', tags: ['health'] },
  { id: 'market-watch', tags: ['business', 'finance'] },
  { id: 'planet-report', tags: ['science', 'environment'] },
  { id: 'newsline', tags: ['news'] },
];

const TITLE_FRAMES = ['{E} {F}', 'Report: {E} {F}', '{E} {F}, sources say', 'Breaking: {E} {F}', '{E} {F} — what we know', '{E} {F}'];
const BODY_FRAMES = [
  '{E} {F}.',
  'According to people familiar with the matter, {e} {F}.',
  'On Tuesday, {e} {F}, officials confirmed.',
  'It emerged this week that {e} {F}.',
  '{E} {F}, a spokesperson said in a statement.',
  'Observers noted that {e} {F}.',
  '{E} also {F}.',
];
const FILLERS = [
  'Analysts expect more details in the coming weeks.',
  'The news comes amid a busy quarter for the industry.',
  'A spokesperson declined to comment further.',
  'More information will be published as it becomes available.',
  'The announcement was made on Tuesday morning.',
  'Reactions on social media were mixed.',
  'Critics say the decision raises new questions.',
  'This story is developing and will be updated.',
  'Experts say the impact could be felt for months.',
  'The full report is available online.',
  'Several questions remain unanswered.',
  'Industry observers had anticipated the move for some time.',
];

/** Headlines with nothing in common: the singletons. */
const SINGLETONS = [
  'Local bakery celebrates fifty years of sourdough',
  'City library extends weekend opening hours',
  'Rare white owl spotted in national park',
  'Museum acquires lost painting by Flemish master',
  'Chess prodigy, 11, becomes youngest grandmaster candidate',
  'Vintage train line reopens after restoration',
  'Farmers report bumper strawberry harvest',
  'New ferry route links two island villages',
  'Composer premieres symphony inspired by glaciers',
  'High school robotics team wins regional title',
  'Zoo welcomes twin red panda cubs',
  'Historic lighthouse gets new lantern',
  'Marathon organisers cap entries at 40,000 runners',
  'Scientists sequence genome of the axolotl',
  'Startup turns coffee grounds into building bricks',
  'Cinema chain brings back drive-in screenings',
  'Volunteers plant 10,000 trees along river banks',
  'Airline adds direct flights to Reykjavik',
  'Publisher reissues forgotten detective novels',
  'Town votes to pedestrianise its main square',
  'Beekeepers warn of invasive hornet spread',
  'Architect wins prize for timber skyscraper design',
  'Restaurant earns first star for vegetarian menu',
  'Teenager finds meteorite fragment in garden',
  'Orchestra livestreams concert from cave',
  'Bike sharing scheme expands to suburbs',
  'Wine region hit by late spring frost',
  'Ancient oak named tree of the year',
  'University launches free online astronomy course',
  'Comedian breaks record for longest stand-up set',
  'Harbour seals return to estuary after decades',
  'Toy maker recalls wooden puzzles over small parts',
  'Video game studio opens office in Nairobi',
  'Dance troupe tours remote mountain schools',
  'Photographer captures rare aurora over desert',
  'Cheese makers revive medieval recipe',
  'Skate park opens on former parking lot',
  'Police recover stolen violin worth a fortune',
  'Festival of kites fills the beach with colour',
  'Researchers teach crows to count to five',
  'Mountain hut installs solar powered sauna',
  'Poet laureate announces retirement tour',
  'Garden show features plants from Patagonia',
  'Ice hockey club unveils new mascot',
  'Antique clock collection goes on display',
  'Surf school offers lessons for blind students',
  'Bridge painting project finishes ahead of schedule',
  'Bookshop cat becomes local celebrity',
  'Choir of grandparents releases debut album',
  'Tiny house village opens for the homeless',
];
const SINGLETON_LINES = [
  'Residents gathered to mark the occasion.',
  'Organisers hope to repeat the event next year.',
  'Tickets are expected to sell out quickly.',
  'Local officials welcomed the initiative.',
  'The project was funded by a community grant.',
];

export interface CorpusItem extends SignalItem {
  /** Ground truth: the story's key (a singleton's own key). */
  readonly group: string;
  /** Id of the item this is a near-duplicate copy of. */
  readonly copyOf?: number;
}

const BASE_TIME = Date.UTC(2026, 2, 2, 6);

function cap(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

function fill(frame: string, entity: string, fact: string): string {
  return frame.replace('{E}', cap(entity)).replace('{e}', entity).replace('{F}', fact);
}

function shuffled<T>(rng: Prng, xs: readonly T[]): T[] {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = rng.int(0, i + 1);
    [a[i], a[j]] = [a[j] as T, a[i] as T];
  }
  return a;
}

/**
 * Builds an item as src/signals/ingest.ts stores it: a one-line summary, tags that are the
 * source's and the feed's (`tags`) then the text's five keywords (at most 12), and a SimHash of
 * title + summary.
 */
export function makeItem(f: { id: number; sourceId: string; title: string; text: string; tags: string[]; publishedAt: number; group: string; copyOf?: number }): CorpusItem {
  const summary = oneLineSummary(f.title, f.text);
  const tags = [...new Set([...f.tags, ...keywords(`${f.title}. ${f.text}`, 5)])].slice(0, 12);
  return {
    id: f.id,
    sourceId: f.sourceId,
    eventId: `evt-${f.id}`,
    url: `https://${f.sourceId}.example/${f.group}/${f.id}`,
    title: f.title,
    summary,
    text: f.text,
    tags,
    simhash: simhash64(`${f.title} ${summary}`),
    publishedAt: f.publishedAt,
    fetchedAt: f.publishedAt + 60_000,
    group: f.group,
    ...(f.copyOf === undefined ? {} : { copyOf: f.copyOf }),
  };
}

/**
 * One telling of a story: a tenth are a title alone (posts, videos), a quarter a title and one
 * sentence, the rest two to four facts with filler between.
 */
function topicItem(rng: Prng, t: Topic, id: number, start: number): CorpusItem {
  const src = rng.pick(SOURCES);
  const shape = rng.next();
  const facts = shuffled(rng, t.facts).slice(0, shape < 0.1 ? 1 : shape < 0.35 ? 2 : rng.int(3, 5));
  const [first, ...rest] = facts as [[string, string], ...Array<[string, string]>];
  const title = fill(rng.pick(TITLE_FRAMES), rng.pick(t.entities), first[rng.int(0, 2)] as string);
  const body: string[] = [];
  for (const f of shape < 0.35 ? rest : facts) body.push(fill(rng.pick(BODY_FRAMES), rng.pick(t.entities), f[rng.int(0, 2)] as string));
  const fillers = body.length === 0 ? 0 : rng.int(0, 3);
  for (let k = 0; k < fillers; k++) body.splice(rng.int(1, body.length + 1), 0, rng.pick(FILLERS));
  const tags = [...src.tags];
  if (rng.next() < 0.6) for (const c of shuffled(rng, t.cats).slice(0, rng.int(1, 3))) tags.push(c);
  if (rng.next() < 0.15) tags.push(rng.pick(['featured', 'latest']));
  return makeItem({ id, sourceId: src.id, title, text: body.join(' '), tags, publishedAt: start + rng.int(0, 6 * 3_600_000), group: t.key });
}

const SYNONYMS: Array<[RegExp, string]> = [
  [/\bsaid\b/, 'stated'],
  [/\bpercent\b/, 'per cent'],
  [/\bTuesday\b/, 'Wednesday'],
  [/\bthousands\b/, 'tens of thousands'],
  [/\bwill\b/, 'is set to'],
  [/\bnew\b/, 'fresh'],
];

/** A copy with a small edit, as syndication and re-posts make them. */
function nearCopy(rng: Prng, orig: CorpusItem, id: number): CorpusItem {
  const src = rng.pick(SOURCES.filter((s) => s.id !== orig.sourceId));
  let title = orig.title;
  let text = orig.text;
  switch (rng.int(0, 6)) {
    case 0:
      title = title.toUpperCase();
      break;
    case 1:
      title = `Update: ${title}`;
      break;
    case 2:
      text = text.replace(/\.(\s|$)/g, '!$1');
      title = `${title}!`;
      break;
    case 3: {
      const s = SYNONYMS.find(([re]) => re.test(text));
      if (s) text = text.replace(s[0], s[1]);
      else text = `${text} ${rng.pick(FILLERS)}`;
      break;
    }
    case 4: {
      const parts = text.split(/(?<=\.)\s/);
      text = parts.length > 2 ? parts.slice(0, -1).join(' ') : `${text} ${rng.pick(FILLERS)}`;
      break;
    }
    default:
      title = `${title} | ${src.id}`;
  }
  return makeItem({ id, sourceId: src.id, title, text, tags: [...src.tags], publishedAt: (orig.publishedAt ?? orig.fetchedAt) + rng.int(60_000, 3_600_000), group: orig.group, copyOf: orig.id });
}

export interface Corpus {
  items: CorpusItem[];
  /** Pairs (a, b) of ids that are copies (b made from a). */
  copies: Array<[number, number]>;
}

/**
 * The ~500-item corpus: 25 stories of 12–20 items, 60 near-duplicate copies, 15 briefings
 * (a story's headline and a line about another story), 50 singletons, shuffled.
 * @example
 * const { items } = corpus(7);
 */
export function corpus(seed = 7): Corpus {
  const rng = new Prng(seed);
  const raw: CorpusItem[] = [];
  let id = 1;
  TOPICS.forEach((t, k) => {
    const n = rng.int(12, 21);
    for (let i = 0; i < n; i++) raw.push(topicItem(rng, t, id++, BASE_TIME + k * 1_800_000));
  });
  const copies: Array<[number, number]> = [];
  for (let c = 0; c < 60; c++) {
    const orig = rng.pick(raw);
    const copy = nearCopy(rng, orig, id++);
    raw.push(copy);
    copies.push([orig.id, copy.id]);
  }
  // Briefings: a headline story, then a line about another one. Their truth is the headline's
  // story; joining them to the other would chain two stories together.
  for (let r = 0; r < 15; r++) {
    const [a, b] = shuffled(rng, TOPICS) as [Topic, Topic];
    const fa = rng.pick(a.facts);
    const fb = rng.pick(b.facts);
    const src = rng.pick(SOURCES);
    const title = fill(rng.pick(TITLE_FRAMES), rng.pick(a.entities), fa[0]);
    const text = `${fill('{E} {F}.', rng.pick(a.entities), fa[1])} ${rng.pick(['In other news,', 'Also today:', 'Elsewhere,'])} ${rng.pick(b.entities)} ${fb[rng.int(0, 2)]}.`;
    raw.push(makeItem({ id: id++, sourceId: src.id, title, text, tags: [...src.tags], publishedAt: BASE_TIME + rng.int(0, 12 * 3_600_000), group: a.key }));
  }
  SINGLETONS.forEach((title, k) => {
    const src = rng.pick(SOURCES);
    raw.push(
      makeItem({
        id: id++,
        sourceId: src.id,
        title,
        text: `${title}. ${rng.pick(SINGLETON_LINES)} ${rng.pick(FILLERS)}`,
        tags: [...src.tags],
        publishedAt: BASE_TIME + rng.int(0, 12 * 3_600_000),
        group: `single-${k}`,
      }),
    );
  });
  return { items: shuffled(rng, raw), copies };
}

const SYLLABLES = 'ka lo mi ru ze ta vin dor pel sun tar qui bre flo gan hes jor lum nat osk pra sil tev urb wex yal zen cor dax fen gil hob ith jas kel mor nix ost pim rav sol tun vex wyn'.split(' ');
const VERBS = 'expands delays approves rejects launches closes opens funds sells buys tests builds cancels wins loses signs renews cuts raises ends starts revives restores'.split(' ');
const NOUNS = 'plant deal market budget software network policy team season study vaccine court contract bridge school festival tariff satellite reactor pipeline stadium union museum airport license merger lawsuit campaign harvest'.split(' ');
const QUALIFIERS = 'after talks|despite protests|for the first time|ahead of schedule|amid criticism|in a surprise move|this quarter|next spring'.split('|');

function pseudoWord(rng: Prng, used: Set<string>): string {
  for (;;) {
    let w = '';
    const n = rng.int(2, 4);
    for (let i = 0; i < n; i++) w += rng.pick(SYLLABLES);
    if (!used.has(w)) {
      used.add(w);
      return w;
    }
  }
}

/**
 * `n` items in stories of ~10 (names generated, facts from a shared vocabulary), with 10%
 * near-duplicate copies and 10% singletons: the shapes of `corpus` at any size.
 * @example
 * const { items } = syntheticCorpus(10_000, 1);
 */
export function syntheticCorpus(n: number, seed = 1): Corpus {
  const rng = new Prng(seed);
  const used = new Set<string>();
  const topicCount = Math.max(1, Math.round((n * 0.8) / 10));
  const topics: Topic[] = [];
  for (let k = 0; k < topicCount; k++) {
    const a = cap(pseudoWord(rng, used));
    const b = cap(pseudoWord(rng, used));
    const facts: Array<[string, string]> = [];
    for (let f = 0; f < 6; f++) {
      const obj = pseudoWord(rng, used);
      const noun = rng.pick(NOUNS);
      facts.push([`${rng.pick(VERBS)} the ${obj} ${noun} ${rng.pick(QUALIFIERS)}`, `${rng.pick(VERBS)} its ${noun} in ${cap(obj)}`]);
    }
    topics.push({ key: `t${k}`, entities: [`${a} ${b}`, a, `the ${a} group`], cats: [a.toLowerCase(), rng.pick(NOUNS)], facts });
  }
  const items: CorpusItem[] = [];
  const copies: Array<[number, number]> = [];
  let id = 1;
  const target = Math.round(n * 0.8);
  while (items.length < target) {
    const t = topics[items.length % topicCount] as Topic;
    items.push(topicItem(rng, t, id++, BASE_TIME + rng.int(0, 48 * 3_600_000)));
  }
  while (items.length < Math.round(n * 0.9)) {
    const orig = rng.pick(items);
    const c = nearCopy(rng, orig, id++);
    items.push(c);
    copies.push([orig.id, c.id]);
  }
  while (items.length < n) {
    const src = rng.pick(SOURCES);
    const w = [pseudoWord(rng, used), pseudoWord(rng, used), pseudoWord(rng, used)];
    const title = `${cap(w[0] as string)} ${rng.pick(NOUNS)} ${rng.pick(VERBS)} ${w[1]}`;
    items.push(
      makeItem({ id: id, sourceId: src.id, title, text: `${title}. The ${w[2]} ${rng.pick(NOUNS)} ${rng.pick(QUALIFIERS)}. ${rng.pick(FILLERS)}`, tags: [...src.tags], publishedAt: BASE_TIME + rng.int(0, 48 * 3_600_000), group: `single-${id}` }),
    );
    id++;
  }
  return { items, copies };
}

/** Pairwise precision and recall of a clustering against the items' groups. */
export function pairwise(items: readonly CorpusItem[], clusterOf: (id: number) => string): { precision: number; recall: number; tp: number; predicted: number; actual: number } {
  const pairs = (m: Map<string, number>) => [...m.values()].reduce((s, c) => s + (c * (c - 1)) / 2, 0);
  const pred = new Map<string, number>();
  const truth = new Map<string, number>();
  const both = new Map<string, number>();
  for (const it of items) {
    const c = clusterOf(it.id);
    pred.set(c, (pred.get(c) ?? 0) + 1);
    truth.set(it.group, (truth.get(it.group) ?? 0) + 1);
    const k = `${c}\u0000${it.group}`;
    both.set(k, (both.get(k) ?? 0) + 1);
  }
  const tp = pairs(both);
  const predicted = pairs(pred);
  const actual = pairs(truth);
  return { precision: predicted === 0 ? 1 : tp / predicted, recall: actual === 0 ? 1 : tp / actual, tp, predicted, actual };
}

/**
 * `n` items in the 25 stories of `corpus` (copies of the corpus under successive seeds, ids
 * renumbered): few stories of hundreds of items each, the expensive shape for clustering.
 * @example
 * const { items } = bigStories(10_000);
 */
export function bigStories(n: number, seed = 1): Corpus {
  const items: CorpusItem[] = [];
  const copies: Array<[number, number]> = [];
  let id = 1;
  for (let s = seed; items.length < n; s++) {
    const c = corpus(s);
    const renumber = new Map<number, number>();
    for (const it of c.items) {
      if (items.length >= n) break;
      renumber.set(it.id, id);
      const group = it.group.startsWith('single-') ? `${it.group}-${s}` : it.group;
      items.push({ ...it, id, eventId: `evt-${id}`, group, ...(it.copyOf === undefined ? {} : { copyOf: it.copyOf }) });
      id++;
    }
    for (const [a, b] of c.copies) {
      const ra = renumber.get(a);
      const rb = renumber.get(b);
      if (ra !== undefined && rb !== undefined) copies.push([ra, rb]);
    }
  }
  return { items, copies };
}
