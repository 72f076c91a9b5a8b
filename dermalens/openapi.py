"""The OpenAPI 3 description of the JSON API (kept beside the routes; a test checks they agree)."""

from dermalens.lesions import BODY_SITES, CLASSES, SEXES
from dermalens.outcomes import OUTCOME_DIAGNOSES, OUTCOME_SOURCES
from dermalens.risk import RISK_CATEGORIES


def _error(description: str) -> dict:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _analysis_id() -> dict:
    return {"name": "public_id", "in": "path", "required": True, "schema": {"type": "string"}}


def _comparison_ids() -> dict:
    return {"name": "ids", "in": "query", "required": True, "style": "form", "explode": True,
            "schema": {"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 4}}


def _owned(summary: str, content: dict, operation_id: str) -> dict:
    return {"summary": summary, "operationId": operation_id, "parameters": [_analysis_id()],
            "security": [{"bearerAuth": []}],
            "responses": {"200": {"description": "OK", "content": content},
                          "401": _error("Missing, invalid or revoked token"),
                          "404": _error("No such analysis of yours")}}


def openapi_document() -> dict:
    probabilities = {"type": "object", "properties": {c: {"type": "number"} for c in CLASSES},
                     "required": list(CLASSES)}
    analysis = {
        "type": "object",
        "description": "Three questions answered apart: can the image be assessed "
                       "(`indeterminate`: declined, cannot assess - retake, with its reasons; then "
                       "`probabilities`, `ranked`, `top_class` and `malignant_probability` are null "
                       "and what the network computed anyway is in `unreliable_probabilities`), how "
                       "sure is the model (`uncertain`, a flag on an answer, never a decline), and "
                       "what should happen (`risk.category` and `risk.action`).",
        "required": ["id", "created_at", "inputs", "probabilities", "top_class",
                     "malignant_probability", "risk", "indeterminate", "indeterminate_reasons",
                     "uncertain", "uncertainty_reasons", "notices", "outcome", "model", "urls"],
        "properties": {
            "id": {"type": "string"},
            "created_at": {"type": "string", "format": "date-time"},
            "inputs": {"type": "object"},
            "probabilities": {**probabilities, "nullable": True},
            "unreliable_probabilities": {**probabilities, "nullable": True, "description":
                                         "Only for a declined image: not a result."},
            "ranked": {"type": "array", "items": {"type": "object"}},
            "top_class": {"type": "string", "enum": list(CLASSES), "nullable": True},
            "malignant_probability": {"type": "number", "nullable": True},
            "risk": {"type": "object", "properties": {
                "category": {"type": "string", "enum": list(RISK_CATEGORIES), "description":
                             "urgent: suspected melanoma pathway; keratinocyte: referral for a "
                             "suspected keratinocyte cancer; review: refer, malignancy not ruled "
                             "out; monitor; indeterminate: cannot assess - retake; routine: "
                             "analyses recorded by earlier versions."},
                "label": {"type": "string"}, "action": {"type": "string"},
                "refers": {"type": "boolean"}}},
            "indeterminate": {"type": "boolean", "description": "Declined: the image cannot be assessed."},
            "indeterminate_reasons": {"type": "array", "items": {"type": "string"}},
            "uncertain": {"type": "boolean", "description": "The model is uncertain; the "
                          "recommendation still follows the probabilities."},
            "uncertainty_reasons": {"type": "array", "items": {"type": "string"}},
            "outcome": {"allOf": [{"$ref": "#/components/schemas/Outcome"}], "nullable": True},
            "notices": {"type": "array", "items": {"type": "string"}, "description":
                        "Cautions that leave the answer standing, e.g. colours adjusted before "
                        "analysis."},
            "heatmap_class": {"type": "string"},
            "image_size": {"type": "object"},
            "model": {"type": "object", "properties": {
                "name": {"type": "string"}, "version": {"type": "string"}, "sha256": {"type": "string"}}},
            "urls": {"type": "object", "properties": {
                k: {"type": "string"} for k in ("self", "image", "heatmap", "report")}},
            "disclaimer": {"type": "string"},
        },
    }
    filters = [
        {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100000,
                                                   "default": 1}},
        {"name": "per_page", "in": "query",
         "schema": {"type": "integer", "minimum": 1, "default": 20},
         "description": "Clamped to 100."},
        {"name": "patient_ref", "in": "query", "schema": {"type": "string"},
         "description": "Case-insensitive match of the reference's start (whole with match=exact)."},
        {"name": "lesion_ref", "in": "query", "schema": {"type": "string"},
         "description": "Case-insensitive match of the reference's start (whole with match=exact)."},
        {"name": "match", "in": "query", "schema": {"type": "string", "enum": ["prefix", "exact"],
                                                    "default": "prefix"},
         "description": "exact: the references match whole, so one lesion's reference does not also "
                        "list others that begin with it."},
        {"name": "risk", "in": "query", "schema": {"type": "string", "enum": list(RISK_CATEGORIES)}},
        {"name": "date_from", "in": "query", "schema": {"type": "string", "format": "date"},
         "description": "A day in the clinic's time zone (DERMALENS_TIME_ZONE), 1900-01-01 to "
                        "9998-12-31; not after date_to."},
        {"name": "date_to", "in": "query", "schema": {"type": "string", "format": "date"},
         "description": "A day in the clinic's time zone, 1900-01-01 to 9998-12-31 (inclusive)."},
        {"name": "outcome", "in": "query", "schema": {"type": "string", "enum": ["with", "without"]},
         "description": "Only analyses with, or without, a recorded outcome."},
    ]
    outcome = {"type": "object", "properties": {
        "diagnosis": {"type": "string", "enum": list(OUTCOME_DIAGNOSES)},
        "diagnosis_name": {"type": "string"},
        "group": {"type": "string", "enum": ["malignant", "benign", "unknown"]},
        "source": {"type": "string", "enum": list(OUTCOME_SOURCES)},
        "date": {"type": "string", "format": "date", "nullable": True},
        "note": {"type": "string", "nullable": True},
        "recorded_at": {"type": "string", "format": "date-time"}}}
    outcome_input = {"type": "object", "required": ["diagnosis", "source"], "properties": {
        "diagnosis": {"type": "string", "enum": list(OUTCOME_DIAGNOSES)},
        "source": {"type": "string", "enum": list(OUTCOME_SOURCES)},
        "date": {"type": "string", "format": "date"},
        "note": {"type": "string", "maxLength": 2000}}}
    return {
        "openapi": "3.0.3",
        "info": {"title": "DermaLens API", "version": "1.0.0",
                 "description": "Decision support for dermoscopic lesion triage. Not a diagnosis."},
        "components": {
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {
                    "type": "object", "required": ["code", "message"],
                    "properties": {"code": {"type": "integer"}, "message": {"type": "string"}}}}},
                "Analysis": analysis,
                "Outcome": outcome,
            },
        },
        "paths": {
            "/api/health": {"get": {
                "summary": "Liveness and readiness (no authentication)", "operationId": "health",
                "responses": {"200": {"description": "Ready", "content": {"application/json": {
                    "schema": {"type": "object", "properties": {
                        "status": {"type": "string"}, "model_loaded": {"type": "boolean"},
                        "model_version": {"type": "string"}, "device": {"type": "string"},
                        "database": {"type": "boolean"}, "database_writable": {"type": "boolean"},
                        "database_free_mb": {"type": "integer", "nullable": True},
                        "storage_writable": {"type": "boolean"},
                        "storage_free_mb": {"type": "integer", "nullable": True},
                        "problems": {"type": "array", "items": {"type": "string"}}}}}}},
                              "503": {"description": "Not ready: `problems` says why"}}}},
            "/api/info": {"get": {
                "summary": "Classes, thresholds and model card summary", "operationId": "info",
                "responses": {"200": {"description": "OK", "content": {"application/json": {
                    "schema": {"type": "object"}}}}}}},
            "/api/v1/openapi.json": {"get": {
                "summary": "This document", "operationId": "openapi",
                "responses": {"200": {"description": "OK", "content": {"application/json": {
                    "schema": {"type": "object"}}}}}}},
            "/api/v1/analyses": {
                "post": {
                    "summary": "Analyse an image", "operationId": "createAnalysis",
                    "security": [{"bearerAuth": []}],
                    "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                        "type": "object", "required": ["image"], "properties": {
                            "image": {"type": "string", "format": "binary",
                                      "description": "JPEG or PNG dermoscopic image"},
                            "patient_ref": {"type": "string", "maxLength": 64},
                            "lesion_ref": {"type": "string", "maxLength": 64},
                            "age": {"type": "integer", "minimum": 0, "maximum": 120},
                            "sex": {"type": "string", "enum": list(SEXES)},
                            "site": {"type": "string", "enum": list(BODY_SITES)},
                            "note": {"type": "string", "maxLength": 2000}}}}}},
                    "responses": {
                        "201": {"description": "Created", "content": {"application/json": {
                            "schema": {"$ref": "#/components/schemas/Analysis"}}}},
                        "400": _error("No image"), "401": _error("Missing or invalid token"),
                        "413": _error("Upload too large"), "415": _error("Not a JPEG/PNG image"),
                        "422": _error("A field outside its allowed values"),
                        "429": _error("Rate limited")}},
                "get": {
                    "summary": "List your analyses, newest first", "operationId": "listAnalyses",
                    "security": [{"bearerAuth": []}], "parameters": filters,
                    "responses": {
                        "200": {"description": "OK", "content": {"application/json": {"schema": {
                            "type": "object", "properties": {
                                "items": {"type": "array",
                                          "items": {"$ref": "#/components/schemas/Analysis"}},
                                "page": {"type": "integer"}, "per_page": {"type": "integer"},
                                "total": {"type": "integer"}, "pages": {"type": "integer"}}}}}},
                        "400": _error("Invalid filter or paging"),
                        "401": _error("Missing or invalid token")}},
            },
            "/api/v1/analyses/compare": {"get": {
                "summary": "Two to four of your analyses side by side, oldest first",
                "operationId": "compareAnalyses", "security": [{"bearerAuth": []}],
                "parameters": [_comparison_ids()],
                "responses": {
                    "200": {"description": "OK", "content": {"application/json": {"schema": {
                        "type": "object", "properties": {
                            "items": {"type": "array",
                                      "items": {"$ref": "#/components/schemas/Analysis"}},
                            "cautions": {"type": "array", "items": {"type": "string"},
                                         "description": "Different patients, lesions or model "
                                                        "versions."},
                            "malignant_change_points": {
                                "type": "integer", "nullable": True,
                                "description": "Malignant probability of the last minus the "
                                               "first, in whole percentage points as shown (each "
                                               "rounded first); null when either was declined "
                                               "or their patient or lesion references differ."},
                            "disclaimer": {"type": "string"}}}}}},
                    "400": _error("Fewer than 2 or more than 4 distinct ids"),
                    "401": _error("Missing or invalid token"),
                    "404": _error("An id that is not one of your analyses")}}},
            "/api/v1/analyses/compare/report.pdf": {"get": {
                "summary": "The comparison as a PDF report to file (A4; ?paper=letter for Letter)",
                "operationId": "getComparisonReport", "security": [{"bearerAuth": []}],
                "parameters": [_comparison_ids()],
                "responses": {
                    "200": {"description": "OK", "content": {"application/pdf": {
                        "schema": {"type": "string", "format": "binary"}}}},
                    "400": _error("Fewer than 2 or more than 4 distinct ids"),
                    "401": _error("Missing or invalid token"),
                    "404": _error("An id that is not one of your analyses")}}},
            "/api/v1/analyses/{public_id}": {
                "get": _owned("One of your analyses",
                              {"application/json": {"schema": {"$ref": "#/components/schemas/Analysis"}}},
                              "getAnalysis"),
                "delete": {"summary": "Delete one of your analyses, its image and heatmap",
                           "operationId": "deleteAnalysis",
                           "parameters": [_analysis_id()], "security": [{"bearerAuth": []}],
                           "responses": {"204": {"description": "Deleted"},
                                         "401": _error("Missing or invalid token"),
                                         "404": _error("No such analysis of yours")}},
            },
            "/api/v1/analyses/{public_id}/outcome": {
                "get": _owned("What the lesion turned out to be (`outcome` null until recorded)",
                              {"application/json": {"schema": {"type": "object", "properties": {
                                  "outcome": {"allOf": [{"$ref": "#/components/schemas/Outcome"}],
                                              "nullable": True}}}}}, "getOutcome"),
                "put": {**_owned("Record or correct what the lesion turned out to be (422 on bad input)",
                                 {"application/json": {"schema": {"type": "object", "properties": {
                                     "outcome": {"$ref": "#/components/schemas/Outcome"}}}}}, "putOutcome"),
                        "requestBody": {"required": True, "content": {
                            "application/json": {"schema": outcome_input},
                            "application/x-www-form-urlencoded": {"schema": outcome_input}}}},
            },
            "/api/v1/site-performance": {"get": {
                "summary": "How the tool has done on your analyses with recorded outcomes, beside "
                           "the model card's validation figures (Wilson 95% intervals)",
                "operationId": "getSitePerformance", "security": [{"bearerAuth": []}],
                "responses": {"200": {"description": "OK", "content": {"application/json": {
                    "schema": {"type": "object"}}}},
                    "401": _error("Missing or invalid token")}}},
            "/api/v1/analyses/{public_id}/report.pdf": {"get": _owned(
                "PDF report (A4; ?paper=letter for Letter)",
                {"application/pdf": {"schema": {"type": "string", "format": "binary"}}}, "getReport")},
            "/api/v1/analyses/{public_id}/image": {"get": _owned(
                "The stored image (JPEG)",
                {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}}, "getImage")},
            "/api/v1/analyses/{public_id}/heatmap": {"get": _owned(
                "The Grad-CAM heatmap over the image, the size of the stored image (JPEG; PNG for "
                "analyses stored by earlier versions)",
                {"image/jpeg": {"schema": {"type": "string", "format": "binary"}},
                 "image/png": {"schema": {"type": "string", "format": "binary"}}}, "getHeatmap")},
        },
    }
