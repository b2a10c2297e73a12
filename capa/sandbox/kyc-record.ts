import type { KycCheckSection, KycCountry, KycDetails, KycEvent } from '../types';
import { createRng, hashSeed, pick, type Rng } from './rng';

/**
 * Fake AiPrise-shaped KYC details (capa-api.md §2.4) whose per-check statuses agree with the
 * chosen outcome. The PII is invented but realistic-looking, and derived from the userId so the
 * same user keeps the same identity across submissions and restarts of a test.
 */

export const KYC_OUTCOMES = ['VERIFIED', 'REJECTED', 'REVIEW_NEEDED', 'PENDING'] as const;
export type KycOutcome = (typeof KYC_OUTCOMES)[number];

/** The webhook that announces each outcome; PENDING only ever produces CREATED_KYC. */
export const OUTCOME_EVENT: Record<KycOutcome, KycEvent | null> = {
  VERIFIED: 'VERIFIED_USER',
  REJECTED: 'REJECTED_KYC',
  REVIEW_NEEDED: 'REVIEW_NEEDED_KYC',
  PENDING: null,
};

export function isKycOutcome(v: unknown): v is KycOutcome {
  return typeof v === 'string' && (KYC_OUTCOMES as readonly string[]).includes(v);
}

interface Identity {
  firstName: string;
  middleName?: string;
  lastName: string;
  secondLastName: string;
  gender: 'M' | 'F';
  birthDate: string;
  idType: string;
  idNumber: string;
  taxId: string;
  phoneNumber: string;
  fullAddress: string;
  profession: string;
  idIssueDate: string;
  idExpiryDate: string;
}

const NAMES = {
  MX: {
    F: ['Ana', 'María', 'Sofía', 'Valeria', 'Carmen', 'Guadalupe', 'Fernanda', 'Lucía'],
    M: ['José', 'Luis', 'Jorge', 'Diego', 'Miguel', 'Juan', 'Alejandro', 'Ricardo'],
    last: ['García', 'Hernández', 'López', 'Martínez', 'González', 'Pérez', 'Rodríguez', 'Sánchez', 'Ramírez', 'Torres', 'Flores', 'Ruiz'],
    streets: [
      'Av. Insurgentes Sur 1602, Col. Crédito Constructor, Benito Juárez, 03940 Ciudad de México, CDMX',
      'Calle Morelos 118, Centro, 44100 Guadalajara, Jal.',
      'Av. Constitución 945, Centro, 64000 Monterrey, N.L.',
      'Calle 60 No. 491, Centro, 97000 Mérida, Yuc.',
    ],
  },
  DO: {
    F: ['Rosa', 'Yokasta', 'Altagracia', 'Carolina', 'Mercedes', 'Patricia', 'Luisa', 'Daniela'],
    M: ['Juan', 'Ramón', 'Rafael', 'Pedro', 'Manuel', 'Francisco', 'Héctor', 'Wilson'],
    last: ['Peña', 'Rosario', 'Féliz', 'Batista', 'Reyes', 'Santana', 'Jiménez', 'De la Cruz', 'Almonte', 'Guzmán', 'Núñez', 'Mejía'],
    streets: [
      'Calle El Conde 45, Zona Colonial, Santo Domingo 10210',
      'Av. 27 de Febrero 301, Ensanche Naco, Santo Domingo 10122',
      'Calle del Sol 12, Santiago de los Caballeros 51000',
      'Av. Duarte 88, La Romana 22000',
    ],
  },
} as const;

const PROFESSIONS = ['Employee', 'Entrepreneur or Contractor', 'Student', 'Public Servant', 'Other'];
const LETTERS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';

function digits(rng: Rng, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += Math.floor(rng() * 10);
  return s;
}

function letters(rng: Rng, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += pick(rng, LETTERS.split(''));
  return s;
}

function plain(s: string): string {
  return s
    .normalize('NFD')
    .replace(/[\u0300-\u036f]/g, '')
    .toUpperCase();
}

function makeIdentity(userId: string, country: KycCountry, alias: string | undefined): Identity {
  const rng = createRng(hashSeed(`${userId}:${country}`));
  const names = NAMES[country];
  const gender: 'M' | 'F' = rng() < 0.5 ? 'F' : 'M';
  // Reuse the operator-entered alias when it looks like a person's name, so screens agree.
  const aliasParts = (alias ?? '')
    .trim()
    .split(/\s+/)
    .filter((p) => /^\p{L}[\p{L}'-]*$/u.test(p));
  const firstName = aliasParts.length >= 2 ? aliasParts[0]! : pick(rng, names[gender]);
  const lastName = aliasParts.length >= 2 ? aliasParts[1]! : pick(rng, names.last);
  const secondLastName = aliasParts.length >= 3 ? aliasParts[2]! : pick(rng, names.last);
  const year = 1960 + Math.floor(rng() * 45);
  const month = 1 + Math.floor(rng() * 12);
  const day = 1 + Math.floor(rng() * 28);
  const pad = (n: number) => String(n).padStart(2, '0');
  const birthDate = `${year}-${pad(month)}-${pad(day)}`;
  const yymmdd = `${String(year).slice(2)}${pad(month)}${pad(day)}`;
  const issueYear = 2016 + Math.floor(rng() * 8);
  const l1 = plain(lastName),
    l2 = plain(secondLastName),
    f1 = plain(firstName);
  if (country === 'MX') {
    // RFC (persona física): 4 letters + YYMMDD + 3-char homoclave — matches Capa's documented regex.
    const rfc = `${l1[0]}${l1.replace(/[^AEIOU]/g, '')[0] ?? 'X'}${l2[0]}${f1[0]}${yymmdd}${letters(rng, 2)}${digits(rng, 1)}`;
    return {
      firstName,
      lastName,
      secondLastName,
      gender,
      birthDate,
      idType: 'INE',
      // INE "clave de elector": 6 letters, YYMMDD, 2-digit state, sex, 3 digits.
      idNumber: `${l1.slice(0, 2)}${l2.slice(0, 2)}${f1.slice(0, 2)}${yymmdd}09${gender === 'F' ? 'M' : 'H'}${digits(rng, 3)}`.replace(
        /[^A-Z0-9]/g,
        'X',
      ),
      taxId: rfc.replace(/[^A-Z0-9]/g, 'X'),
      phoneNumber: `+5255${digits(rng, 8)}`,
      fullAddress: pick(rng, names.streets),
      profession: pick(rng, PROFESSIONS),
      idIssueDate: `${issueYear}-${pad(1 + Math.floor(rng() * 12))}-15`,
      idExpiryDate: `${issueYear + 10}-12-31`,
    };
  }
  const cedula = `${digits(rng, 3)}-${digits(rng, 7)}-${digits(rng, 1)}`;
  return {
    firstName,
    lastName,
    secondLastName,
    gender,
    birthDate,
    idType: 'CEDULA',
    idNumber: cedula,
    taxId: cedula.replace(/-/g, ''),
    phoneNumber: `+1809${digits(rng, 7)}`,
    fullAddress: pick(rng, names.streets),
    profession: pick(rng, PROFESSIONS),
    idIssueDate: `${issueYear}-${pad(1 + Math.floor(rng() * 12))}-01`,
    idExpiryDate: `${issueYear + 10}-12-31`,
  };
}

const approved = (sectionId: string, result = 'PASSED'): KycCheckSection => ({
  section_id: sectionId,
  status: 'APPROVED',
  result,
  statusReasons: [],
  warnings: [],
  checkSummary: {},
});
const pending = (sectionId: string): KycCheckSection => ({
  section_id: sectionId,
  status: 'PENDING',
  statusReasons: [],
  warnings: [],
  checkSummary: {},
});

export interface BuildKycDetailsInput {
  userId: string;
  alias?: string;
  country: KycCountry;
  outcome: KycOutcome;
  /** Raw override for aipriseSummary.verificationResult (to test unknown values like APPROVED). */
  verificationResult?: string;
  publicUrl: string;
  verificationSessionId: string;
  createdAt: Date;
}

export function buildKycDetails(input: BuildKycDetailsInput): KycDetails {
  const who = makeIdentity(input.userId, input.country, input.alias);
  const rng = createRng(hashSeed(`${input.verificationSessionId}:checks`));
  const o = input.outcome;
  const fullName = plain([who.firstName, who.middleName, who.lastName, who.secondLastName].filter(Boolean).join(' '));
  const countryName = input.country === 'MX' ? 'Mexico' : 'Dominican Republic';
  const mediaBase = `${input.publicUrl}/kyc/media/${input.verificationSessionId}`;

  const idInfo = {
    ...(o === 'PENDING' ? pending('id_verification') : approved('id_verification')),
    address: { fullAddress: who.fullAddress },
    birthDate: who.birthDate,
    documentDetails: { documentType: who.idType, issuingAuthority: input.country === 'MX' ? 'INE' : 'JCE' },
    firstName: plain(who.firstName),
    lastName: plain(who.lastName),
    secondLastName: plain(who.secondLastName),
    fullName,
    gender: who.gender,
    idExpiryDate: who.idExpiryDate,
    idIssueDate: who.idIssueDate,
    idType: who.idType,
    idNumber: who.idNumber,
    nationality: countryName,
    nationalityCode: input.country,
    issueCountry: countryName,
    issueCountryCode: input.country,
  };

  const score = (lo: number, hi: number) => Math.round((lo + rng() * (hi - lo)) * 100) / 100;
  let faceMatchInfo: KycDetails['faceMatchInfo'] = { ...approved('face_match'), faceMatchScore: score(0.9, 0.99) };
  let faceLivenessInfo: KycCheckSection = approved('face_liveness');
  let fraudInsights: KycDetails['fraudInsights'] = {
    ...approved('fraud_insights', 'CLEAN'),
    relatedSessionInsights: { result: 'CLEAN', status: 'APPROVED' },
  };
  let amlInfo: KycDetails['amlInfo'] = {
    numHits: 0,
    entityHits: [],
    amlHitSummary: {},
    searchCriteria: { searchTerm: fullName, fuzzinessScore: 0.5, exactMatch: false },
  };

  if (o === 'REJECTED') {
    faceMatchInfo = {
      section_id: 'face_match',
      status: 'DECLINED',
      result: 'FAILED',
      faceMatchScore: score(0.12, 0.35),
      checkSummary: {},
      warnings: [],
      statusReasons: [{ code: 'FACE_MISMATCH', message: 'The selfie does not match the face on the ID document.' }],
    };
    faceLivenessInfo = { ...approved('face_liveness') };
  } else if (o === 'REVIEW_NEEDED') {
    amlInfo = {
      numHits: 1,
      entityHits: [
        {
          entityType: 'PERSON',
          name: fullName,
          nameMatchScore: score(0.82, 0.93),
          alsoKnownAs: [],
          amlHits: [{ listName: 'PEP - Sandbox list', category: 'PEP' }],
          dateOfBirth: `${who.birthDate.slice(0, 4)}-01-01`,
          dateOfBirthMatchScore: 0.5,
          id: `aml-${input.verificationSessionId.slice(0, 8)}`,
          resolutionStatus: 'UNRESOLVED',
        },
      ],
      amlHitSummary: { pep: 1, sanctions: 0, adverseMedia: 0 },
      searchCriteria: { searchTerm: fullName, fuzzinessScore: 0.5, exactMatch: false },
    };
    fraudInsights = {
      section_id: 'fraud_insights',
      status: 'REVIEW_NEEDED',
      result: 'SUSPICIOUS',
      checkSummary: {},
      statusReasons: [{ code: 'POTENTIAL_AML_MATCH', message: 'Possible match on a PEP list; manual review required.' }],
      warnings: [
        {
          code: 'AML_HIT',
          message: 'One unresolved AML hit.',
          warningId: `w-${input.verificationSessionId.slice(0, 8)}`,
          resolutionStatus: 'UNRESOLVED',
        },
      ],
      relatedSessionInsights: { result: 'CLEAN', status: 'APPROVED' },
    };
  } else if (o === 'PENDING') {
    faceMatchInfo = pending('face_match');
    faceLivenessInfo = pending('face_liveness');
    fraudInsights = pending('fraud_insights');
    amlInfo = {
      numHits: 0,
      entityHits: [],
      amlHitSummary: {},
      searchCriteria: { searchTerm: fullName, fuzzinessScore: 0.5, exactMatch: false },
    };
  }

  return {
    aipriseSummary: { verificationResult: input.verificationResult ?? o },
    clientReferenceId: input.userId,
    clientReferenceData: {
      personalInfo: { profession: who.profession, phoneNumber: who.phoneNumber, birthCountry: input.country, taxId: who.taxId },
    },
    faceLivenessInfo,
    faceMatchInfo,
    fraudInsights,
    idInfo,
    amlInfo,
    media: {
      frontIdImageUrl: `${mediaBase}/front-id.png`,
      backIdImageUrl: `${mediaBase}/back-id.png`,
      selfieImageUrl: `${mediaBase}/selfie.png`,
    },
    verificationSessionId: input.verificationSessionId,
    createdAt: input.createdAt.toISOString(),
  };
}
