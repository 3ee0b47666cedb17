#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* Written into /usr/local/include by the project's before-all. */
#include <xarch_hooks.h>

static PyObject *answer(PyObject *self, PyObject *unused) {
    return PyLong_FromLong(XARCH_HOOKS_ANSWER);
}

static PyObject *greeting(PyObject *self, PyObject *unused) {
    return PyUnicode_FromString(XARCH_HOOKS_GREETING);
}

static PyMethodDef methods[] = {
    {"answer", answer, METH_NOARGS, "XARCH_HOOKS_ANSWER from the before-all header."},
    {"greeting", greeting, METH_NOARGS, "XARCH_HOOKS_GREETING from the environment option."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_hooks", NULL, -1, methods};

PyMODINIT_FUNC PyInit__hooks(void) { return PyModule_Create(&module); }
