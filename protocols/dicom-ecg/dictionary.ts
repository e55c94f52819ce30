// The DICOM attributes the ECG decoder reads, with their value representations: in Implicit VR
// Little Endian nothing in the file says which element is a sequence or a number, so this table
// does.
//
// Source: DICOM PS3.6 "Data Dictionary", Table 6-1 (Registry of DICOM Data Elements), for tag, VR
// and keyword; PS3.3 C.10.9 "Waveform Module" (Table C.10-9) and C.10.10 "Waveform Annotation
// Module" (Table C.10-10) for where each sits. Checked against two independent transcriptions of
// PS3.6 (the Imebra and DCMTK-derived dictionaries) and the innolitics PS3.3 attribute tables;
// Waveform Data (5400,1010) is "OB or OW" in PS3.6 and OW in implicit VR for 16-bit samples.
export interface DictEntry {
  vr: string;
  keyword: string;
}

export const DICOM_ECG_DICTIONARY: Readonly<Record<string, DictEntry>> = {
  // File meta and SOP common (PS3.6; meta is always explicit VR)
  x00020002: { vr: "UI", keyword: "MediaStorageSOPClassUID" },
  x00020010: { vr: "UI", keyword: "TransferSyntaxUID" },
  x00080005: { vr: "CS", keyword: "SpecificCharacterSet" },
  x00080016: { vr: "UI", keyword: "SOPClassUID" },
  x00080018: { vr: "UI", keyword: "SOPInstanceUID" },
  // Acquisition time (General Equipment / Acquisition Context)
  x00080022: { vr: "DA", keyword: "AcquisitionDate" },
  x0008002a: { vr: "DT", keyword: "AcquisitionDateTime" },
  x00080023: { vr: "DA", keyword: "ContentDate" },
  x00080032: { vr: "TM", keyword: "AcquisitionTime" },
  x00080033: { vr: "TM", keyword: "ContentTime" },
  x00080201: { vr: "SH", keyword: "TimezoneOffsetFromUTC" },
  // Equipment
  x00080070: { vr: "LO", keyword: "Manufacturer" },
  x00081090: { vr: "LO", keyword: "ManufacturerModelName" },
  x00181000: { vr: "LO", keyword: "DeviceSerialNumber" },
  x00181020: { vr: "LO", keyword: "SoftwareVersions" },
  // Patient (kept, never logged)
  x00100010: { vr: "PN", keyword: "PatientName" },
  x00100020: { vr: "LO", keyword: "PatientID" },
  x00100030: { vr: "DA", keyword: "PatientBirthDate" },
  x00100040: { vr: "CS", keyword: "PatientSex" },
  // Code sequence macro items
  x00080100: { vr: "SH", keyword: "CodeValue" },
  x00080102: { vr: "SH", keyword: "CodingSchemeDesignator" },
  x00080104: { vr: "LO", keyword: "CodeMeaning" },
  // Waveform Module, PS3.3 C.10.9
  x54000100: { vr: "SQ", keyword: "WaveformSequence" },
  x003a0004: { vr: "CS", keyword: "WaveformOriginality" },
  x003a0005: { vr: "US", keyword: "NumberOfWaveformChannels" },
  x003a0010: { vr: "UL", keyword: "NumberOfWaveformSamples" },
  x003a001a: { vr: "DS", keyword: "SamplingFrequency" },
  x003a0020: { vr: "SH", keyword: "MultiplexGroupLabel" },
  x003a0200: { vr: "SQ", keyword: "ChannelDefinitionSequence" },
  x003a0202: { vr: "IS", keyword: "WaveformChannelNumber" },
  x003a0203: { vr: "SH", keyword: "ChannelLabel" },
  x003a0205: { vr: "CS", keyword: "ChannelStatus" },
  x003a0208: { vr: "SQ", keyword: "ChannelSourceSequence" },
  x003a0209: { vr: "SQ", keyword: "ChannelSourceModifiersSequence" },
  x003a0210: { vr: "DS", keyword: "ChannelSensitivity" },
  x003a0211: { vr: "SQ", keyword: "ChannelSensitivityUnitsSequence" },
  x003a0212: { vr: "DS", keyword: "ChannelSensitivityCorrectionFactor" },
  x003a0213: { vr: "DS", keyword: "ChannelBaseline" },
  x003a0214: { vr: "DS", keyword: "ChannelTimeSkew" },
  x003a0215: { vr: "DS", keyword: "ChannelSampleSkew" },
  x003a021a: { vr: "US", keyword: "WaveformBitsStored" },
  x003a0220: { vr: "DS", keyword: "FilterLowFrequency" },
  x003a0221: { vr: "DS", keyword: "FilterHighFrequency" },
  x003a0222: { vr: "DS", keyword: "NotchFilterFrequency" },
  x54001004: { vr: "US", keyword: "WaveformBitsAllocated" },
  x54001006: { vr: "CS", keyword: "WaveformSampleInterpretation" },
  x5400100a: { vr: "OW", keyword: "WaveformPaddingValue" },
  x54001010: { vr: "OW", keyword: "WaveformData" },
  // Waveform Annotation Module, PS3.3 C.10.10
  x0040b020: { vr: "SQ", keyword: "WaveformAnnotationSequence" },
  x00700006: { vr: "ST", keyword: "UnformattedTextValue" },
  x0040a043: { vr: "SQ", keyword: "ConceptNameCodeSequence" },
  x0040a30a: { vr: "DS", keyword: "NumericValue" },
  x004008ea: { vr: "SQ", keyword: "MeasurementUnitsCodeSequence" },
  x0040a0b0: { vr: "US", keyword: "ReferencedWaveformChannels" },
  x0040a130: { vr: "CS", keyword: "TemporalRangeType" },
  x0040a132: { vr: "UL", keyword: "ReferencedSamplePositions" },
  x0040a138: { vr: "DS", keyword: "ReferencedTimeOffsets" },
  x0040a180: { vr: "US", keyword: "AnnotationGroupNumber" },
  // Sequences elsewhere in ECG objects, so implicit-VR parsing steps into them rather than guessing
  x00400555: { vr: "SQ", keyword: "AcquisitionContextSequence" },
  x0040a168: { vr: "SQ", keyword: "ConceptCodeSequence" },
  x00081032: { vr: "SQ", keyword: "ProcedureCodeSequence" },
  x00081111: { vr: "SQ", keyword: "ReferencedPerformedProcedureStepSequence" },
};

/** The VR for a tag in implicit VR, for dicom-parser's vrCallback; undefined lets it look ahead. */
export function implicitVr(tag: string): string | undefined {
  return DICOM_ECG_DICTIONARY[tag]?.vr;
}

/** Transfer syntaxes (PS3.6 Table A-1 / PS3.5 §10). */
export const TRANSFER_SYNTAX = {
  implicitLittle: "1.2.840.10008.1.2",
  explicitLittle: "1.2.840.10008.1.2.1",
  deflatedExplicitLittle: "1.2.840.10008.1.2.1.99",
  explicitBig: "1.2.840.10008.1.2.2",
} as const;

/** Names of transfer syntaxes we refuse, for a readable error. Others are named by UID only. */
export const TRANSFER_SYNTAX_NAMES: Readonly<Record<string, string>> = {
  "1.2.840.10008.1.2.1.99": "Deflated Explicit VR Little Endian",
  "1.2.840.10008.1.2.2": "Explicit VR Big Endian (retired)",
  "1.2.840.10008.1.2.4.50": "JPEG Baseline",
  "1.2.840.10008.1.2.4.70": "JPEG Lossless",
  "1.2.840.10008.1.2.4.90": "JPEG 2000 (lossless only)",
  "1.2.840.10008.1.2.4.91": "JPEG 2000",
  "1.2.840.10008.1.2.5": "RLE Lossless",
};

/** ECG waveform storage SOP classes (PS3.4 Annex B / PS3.6 Table A-1). */
export const ECG_SOP_CLASSES: Readonly<Record<string, string>> = {
  "1.2.840.10008.5.1.4.1.1.9.1.1": "12-lead ECG Waveform Storage",
  "1.2.840.10008.5.1.4.1.1.9.1.2": "General ECG Waveform Storage",
  "1.2.840.10008.5.1.4.1.1.9.1.3": "Ambulatory ECG Waveform Storage",
};

/** Other SOP classes a cart or PACS may send us by mistake, named in the refusal. */
export const OTHER_SOP_CLASSES: Readonly<Record<string, string>> = {
  "1.2.840.10008.5.1.4.1.1.9.2.1": "Hemodynamic Waveform Storage",
  "1.2.840.10008.5.1.4.1.1.9.3.1": "Cardiac Electrophysiology Waveform Storage",
  "1.2.840.10008.5.1.4.1.1.9.4.1": "Basic Voice Audio Waveform Storage",
  "1.2.840.10008.5.1.4.1.1.104.1": "Encapsulated PDF Storage",
  "1.2.840.10008.5.1.4.1.1.7": "Secondary Capture Image Storage",
  "1.2.840.10008.5.1.4.1.1.2": "CT Image Storage",
  "1.2.840.10008.5.1.4.1.1.88.11": "Basic Text SR Storage",
};
