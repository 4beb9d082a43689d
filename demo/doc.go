// Package demo is three synthetic departmental data APIs for Sluice to sit in
// front of: the police department's residents, the health department's
// hospital visits and the civil affairs department's assistance cases, all of
// Beijing.
//
// It guarantees that the data is a pure function of its seed: Generate with
// the same seed gives byte-identical JSON. Every record is made up, yet
// consistent the way real registers are: each resident identity number has a
// correct GB 11643 check character and agrees with the resident's district,
// birth date and gender, and every visit and assistance case names its person
// by that resident's own identity number, name, phone and district.
//
// The APIs answer GET /{dataset} with a page of records and GET
// /{dataset}/{id} with one record, in JSON, and reject anything else with a
// JSON error. Pages come in dataset order, so the same query always returns
// the same records.
package demo
