// Swagger UI over this gateway's own /openapi.json; its files come from this origin (no CDN, see api/routes/pages.py).
window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui"});
